"""Every answer of the Bot API, through aiogram, as one outcome: the emulator's answers over
HTTP, a port nobody listens on, and the exceptions the emulator does not produce."""

from __future__ import annotations

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
from aiogram.methods import SendMessage

from herald.dev.processes import free_port
from herald.emulator import EmulatorClient, RunningEmulator
from herald.telegram.client import TelegramClient, outcome_of
from herald.telegram.outcomes import OutcomeKind
from herald.telegram.rendering import Rendered

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
