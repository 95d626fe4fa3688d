"""Every answer of the Bot API, through aiogram, as one outcome: the emulator's answers over
HTTP, a port nobody listens on, and the exceptions the emulator does not produce."""

from __future__ import annotations

import asyncio
import functools
from time import monotonic as now
from typing import Any

import pytest
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramEntityTooLarge,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramUnauthorizedError,
)
from aiogram.methods import SendMediaGroup, SendMessage
from aiogram.types import InputMediaPhoto, InputMediaVideo, LinkPreviewOptions

from herald.core.contents import Content
from herald.core.envelopes import Recipient
from herald.dev.processes import free_port
from herald.emulator import EmulatorClient, RunningEmulator
from herald.telegram.client import TelegramClient, method_of, outcome_of
from herald.telegram.outcomes import OutcomeKind
from herald.telegram.rendering import Rendered, render

TOKEN = "123456:test-token"
STORM = {"storm": {"retry_after": 9, "seconds": 60}}

ANSWERS = [
    # id, emulator config patch, chat, expected kind
    ("200-ok", {}, 42, OutcomeKind.OK),
    ("403-blocked", {"blocked": [5]}, 5, OutcomeKind.FORBIDDEN),
    ("403-deactivated", {"deactivated": [5]}, 5, OutcomeKind.FORBIDDEN),
    ("400-chat-not-found", {"not_found": [5]}, 5, OutcomeKind.BAD_REQUEST),
    ("429-storm", {"faults": STORM}, 42, OutcomeKind.RETRY_AFTER),
    ("5xx", {"faults": {"error_ratio": 1.0}}, 42, OutcomeKind.SERVER_ERROR),
    ("answer-lost", {"faults": {"drop_ratio": 1.0}}, 42, OutcomeKind.MAYBE_SENT),
    ("502-html-page", {"faults": {"bad_gateway_ratio": 1.0}}, 42, OutcomeKind.SERVER_ERROR),
]


def hello(chat_id: int) -> Rendered:
    return Rendered("sendMessage", {"chat_id": chat_id, "text": "Hello"})


@pytest.mark.parametrize(
    ("patch", "chat_id", "kind"), [case[1:] for case in ANSWERS], ids=[c[0] for c in ANSWERS]
)
async def test_each_answer_is_one_outcome(
    emulator: RunningEmulator, patch: dict[str, Any], chat_id: int, kind: OutcomeKind
) -> None:
    async with EmulatorClient(emulator.url) as control:
        await control.configure(patch)
    client = TelegramClient(TOKEN, api_url=emulator.url, timeout=5, connections=1)
    try:
        outcome = await client.send(hello(chat_id))
    finally:
        await client.close()
    assert outcome.kind is kind
    assert (outcome.message_id is not None) is (kind is OutcomeKind.OK)
    assert (outcome.retry_after == 9) is (kind is OutcomeKind.RETRY_AFTER)


async def test_a_refused_connection_sent_nothing() -> None:
    client = TelegramClient(
        TOKEN, api_url=f"http://127.0.0.1:{free_port()}", timeout=5, connections=1
    )
    try:
        outcome = await client.send(hello(42))
    finally:
        await client.close()
    assert outcome.kind is OutcomeKind.NOT_SENT


METHOD = SendMessage(chat_id=42, text="Hello")
ERRORS = [
    ("401", TelegramUnauthorizedError(METHOD, "Unauthorized"), OutcomeKind.UNAUTHORIZED),
    ("404", TelegramNotFound(METHOD, "Not Found"), OutcomeKind.BAD_REQUEST),
    ("413", TelegramEntityTooLarge(METHOD, "Request Entity Too Large"), OutcomeKind.BAD_REQUEST),
    ("other-api-error", TelegramAPIError(METHOD, "Conflict"), OutcomeKind.BAD_REQUEST),
    ("timeout", TelegramNetworkError(METHOD, "TimeoutError"), OutcomeKind.MAYBE_SENT),
    ("not-from-aiogram", TimeoutError(), OutcomeKind.MAYBE_SENT),
    (
        "json-but-not-the-result",
        ClientDecodeError("Failed to deserialize object", ValueError(), {"ok": True}),
        OutcomeKind.MAYBE_SENT,
    ),
    ("anything-else", RuntimeError("unexpected"), OutcomeKind.MAYBE_SENT),
]


@pytest.mark.parametrize(
    ("error", "kind"), [case[1:] for case in ERRORS], ids=[c[0] for c in ERRORS]
)
def test_each_exception_is_one_outcome(error: BaseException, kind: OutcomeKind) -> None:
    assert outcome_of(error).kind is kind


async def test_an_html_page_is_a_server_error_that_names_it(emulator: RunningEmulator) -> None:
    async with EmulatorClient(emulator.url) as control:
        await control.configure({"faults": {"bad_gateway_ratio": 1.0}})
    client = TelegramClient(TOKEN, api_url=emulator.url, timeout=5, connections=1)
    try:
        outcome = await client.send(hello(42))
    finally:
        await client.close()
    assert outcome.description.startswith("Not a Bot API answer: <html> <head><title>502 Bad")
    async with EmulatorClient(emulator.url) as control:
        assert (await control.summary()).total == 0  # nothing was delivered


def rendered(given: dict[str, Any], chat_id: int = 42) -> Rendered:
    return render(
        Content.model_validate(given),
        Recipient(chat_id),
        broadcast_uid="0b6f3a52-8c3e-4d0e-9a57-1f2d3c4b5a69",
        allow_paid_broadcast=False,
    )


ALBUM = {
    "text": "<b>Two</b>",
    "showCaptionAboveMedia": True,
    "album": [
        {"type": "photo", "url": "https://x.example/1.jpg"},
        {"type": "video", "fileId": "V"},
    ],
}


def test_an_album_becomes_aiogram_input_media() -> None:
    method = method_of(rendered(ALBUM))
    assert isinstance(method, SendMediaGroup)
    photo, video = method.media
    assert isinstance(photo, InputMediaPhoto) and isinstance(video, InputMediaVideo)
    assert (photo.caption, photo.parse_mode, photo.show_caption_above_media) == (
        "<b>Two</b>",
        "HTML",
        True,
    )
    assert video.caption is None and video.show_caption_above_media is True


def test_link_preview_options_become_aiogram_link_preview_options() -> None:
    method = method_of(rendered({"text": "x", "linkPreview": {"url": "https://e.example"}}))
    assert isinstance(method, SendMessage)
    assert isinstance(method.link_preview_options, LinkPreviewOptions)
    assert method.link_preview_options.url == "https://e.example"


@pytest.mark.parametrize(
    ("given", "method"),
    [
        (ALBUM, "sendMediaGroup"),
        ({"media": {"type": "audio", "url": "https://x.example/a.mp3"}, "text": "a"}, "sendAudio"),
        ({"media": {"type": "voice", "fileId": "VOICE"}}, "sendVoice"),
        ({"text": "x", "messageEffectId": "5104841245755180586"}, "sendMessage"),
    ],
    ids=["album", "audio", "voice", "message-effect"],
)
async def test_each_new_kind_is_delivered_and_keeps_the_first_message_id(
    emulator: RunningEmulator, given: dict[str, Any], method: str
) -> None:
    async with EmulatorClient(emulator.url) as control:
        await control.configure({"limits": {"per_chat_rate": 0}})
    client = TelegramClient(TOKEN, api_url=emulator.url, timeout=5, connections=1)
    try:
        first = await client.send(rendered(given))
        second = await client.send(rendered(given))
    finally:
        await client.close()
    assert first.kind is OutcomeKind.OK, first.description
    assert first.message_id == 1
    # An album takes one message id per item; the ledger keeps the first of each.
    assert second.message_id == (3 if method == "sendMediaGroup" else 2)
    async with EmulatorClient(emulator.url) as control:
        sent = await control.messages(token=TOKEN)
    assert [m.method for m in sent] == [method, method]


EACH_RECIPIENT = {
    "text": "Hi <b>{first_name}</b>",
    "buttons": [[{"text": "Go", "callback": "go"}, {"text": "Site", "url": "https://e.example"}]],
    "messageEffectId": "5104841245755180586",
    "linkPreview": {"disabled": True},
}


@pytest.mark.parametrize(
    "given",
    [
        EACH_RECIPIENT,
        {"media": {"type": "photo", "url": "https://x.example/p.jpg"}, "text": "{first_name}"},
        {"copyFrom": {"chatId": -100123, "messageId": 7}},
        ALBUM,
    ],
    ids=["text", "photo", "copy", "album"],
)
def test_each_recipient_gets_its_own_call_from_the_variant_built_once(
    given: dict[str, Any],
) -> None:
    content = Content.model_validate(given)
    # A user (the effect applies), a group (without it), another user: the shared call
    # keeps nothing of the recipient before.
    for chat_id, name in ((42, "Ann"), (-1001, "Bob"), (43, "<Cy>")):
        call = render(
            content,
            Recipient(chat_id, None, name),
            broadcast_uid="0b6f3a52-8c3e-4d0e-9a57-1f2d3c4b5a69",
            allow_paid_broadcast=True,
        )
        built = method_of(call)
        fresh = type(built).model_validate(call.params)
        assert built.model_dump() == fresh.model_dump()
        assert built.model_dump()["chat_id"] == chat_id


def depart(times: list[float]) -> None:
    times.append(now())


async def test_departure_is_told_once_as_the_request_leaves(emulator: RunningEmulator) -> None:
    # One connection: the second send waits for it, so it leaves after the first arrived,
    # not when it was asked to send. The pacer counts it from then.
    client = TelegramClient(TOKEN, api_url=emulator.url, timeout=5, connections=1)
    departures: dict[int, list[float]] = {42: [], 43: []}
    try:
        outcomes = await asyncio.gather(
            *(
                client.send(hello(chat), departed=functools.partial(depart, departures[chat]))
                for chat in (42, 43)
            )
        )
    finally:
        await client.close()
    assert [o.kind for o in outcomes] == [OutcomeKind.OK, OutcomeKind.OK]
    async with EmulatorClient(emulator.url) as control:
        arrived = {m.chat_id: m.monotonic for m in await control.messages(token=TOKEN)}
    assert [len(times) for times in departures.values()] == [1, 1]
    first, second = sorted(departures, key=lambda chat: departures[chat][0])
    assert departures[first][0] <= arrived[first] <= departures[second][0] <= arrived[second]


async def test_a_request_that_never_left_tells_no_departure() -> None:
    client = TelegramClient(
        TOKEN, api_url=f"http://127.0.0.1:{free_port()}", timeout=5, connections=1
    )
    departures: list[float] = []
    try:
        outcome = await client.send(hello(42), departed=lambda: departures.append(now()))
    finally:
        await client.close()
    assert outcome.kind is OutcomeKind.NOT_SENT
    assert departures == []
