"""The emulator's behaviour without HTTP: answers, configured chats, recording, faults."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiogram.types import Message, MessageId, Update, User
from pydantic import ValidationError

from herald.emulator.clocks import ManualClock
from herald.emulator.emulating import EmulatorState
from herald.emulator.settings import EmulatorConfig, Faults, Limits

TOKEN = "123:abc"
OFF = Limits(rate=0, paid_rate=0, per_chat_rate=0)


@pytest.fixture
def state(clock: ManualClock) -> EmulatorState:
    return EmulatorState(
        EmulatorConfig(limits=OFF, blocked={5}, deactivated={6}, not_found={7}), clock=clock
    )


def test_get_me_is_the_bot_of_the_token(state: EmulatorState) -> None:
    user = User.model_validate(state.call(TOKEN, "getMe", {}).body["result"])
    assert user.id == 123
    assert user.is_bot


def test_send_message_answers_a_telegram_message(state: EmulatorState) -> None:
    reply = state.call(
        TOKEN, "sendMessage", {"chat_id": 42, "text": "<b>Hi</b>", "parse_mode": "HTML"}
    )
    assert reply.status == 200
    assert reply.body["ok"] is True
    message = Message.model_validate(reply.body["result"])
    assert (message.message_id, message.chat.id, message.chat.type) == (1, 42, "private")
    assert message.text == "Hi"
    assert message.from_user is not None and message.from_user.id == 123
    second = state.call(TOKEN, "sendMessage", {"chat_id": 42, "text": "again"})
    assert second.body["result"]["message_id"] == 2


def test_method_names_are_case_insensitive(state: EmulatorState) -> None:
    assert state.call(TOKEN, "SENDMESSAGE", {"chat_id": 1, "text": "x"}).status == 200
    assert state.recorder.messages()[0].method == "sendMessage"


@pytest.mark.parametrize(
    ("token", "method", "status", "description"),
    [
        ("not-a-token", "getMe", 401, "Unauthorized"),
        ("123:", "getMe", 401, "Unauthorized"),
        (TOKEN, "sendCarrierPigeon", 404, "Not Found"),
    ],
    ids=["malformed-token", "empty-secret", "unknown-method"],
)
def test_token_and_method_errors(
    state: EmulatorState, token: str, method: str, status: int, description: str
) -> None:
    reply = state.call(token, method, {})
    assert reply.status == status
    assert reply.body == {"ok": False, "error_code": status, "description": description}


@pytest.mark.parametrize(
    ("params", "status", "description"),
    [
        ({"chat_id": 5}, 403, "Forbidden: bot was blocked by the user"),
        ({"chat_id": 6}, 403, "Forbidden: user is deactivated"),
        ({"chat_id": 7}, 400, "Bad Request: chat not found"),
        ({"chat_id": "nobody"}, 400, "Bad Request: chat not found"),
        ({}, 400, "Bad Request: chat_id is empty"),
        ({"chat_id": 1, "text": ""}, 400, "Bad Request: message text is empty"),
        ({"chat_id": 1, "text": "x" * 4097}, 400, "Bad Request: message is too long"),
        (
            {"chat_id": 1, "text": "<b>x", "parse_mode": "HTML"},
            400,
            "Bad Request: can't parse entities: "
            'Can\'t find end tag corresponding to start tag "b"',
        ),
        (
            {"chat_id": 1, "text": "a.b", "parse_mode": "MarkdownV2"},
            400,
            "Bad Request: can't parse entities: Character '.' is reserved and must be escaped "
            "with the preceding '\\'",
        ),
        (
            {"chat_id": 1, "text": "x", "parse_mode": "BBCode"},
            400,
            "Bad Request: unsupported parse_mode",
        ),
    ],
    ids=[
        "blocked",
        "deactivated",
        "not-found",
        "bad-chat-id",
        "no-chat",
        "empty-text",
        "text-too-long",
        "bad-html",
        "bad-markdown-v2",
        "unknown-parse-mode",
    ],
)
def test_refused_messages_are_not_recorded(
    state: EmulatorState, params: dict[str, Any], status: int, description: str
) -> None:
    reply = state.call(TOKEN, "sendMessage", {"text": "hello", **params})
    assert reply.status == status
    assert reply.body == {"ok": False, "error_code": status, "description": description}
    summary = state.recorder.summary()
    assert summary.total == 0
    assert summary.errors == {status: 1}


def test_text_limit_counts_the_parsed_text(state: EmulatorState) -> None:
    text = "<b>" + "x" * 4096 + "</b>"
    assert (
        state.call(TOKEN, "sendMessage", {"chat_id": 1, "text": text, "parse_mode": "HTML"}).status
        == 200
    )


def test_media_caption_limits_and_markup(state: EmulatorState) -> None:
    base = {"chat_id": 1, "photo": "https://img.example/a.png"}
    too_long = state.call(TOKEN, "sendPhoto", {**base, "caption": "c" * 1025})
    assert too_long.body["description"] == "Bad Request: message caption is too long"
    bad = state.call(TOKEN, "sendPhoto", {**base, "caption": "<i>x", "parse_mode": "HTML"})
    assert bad.body["description"].startswith("Bad Request: can't parse entities: ")
    missing = state.call(TOKEN, "sendVideo", {"chat_id": 1})
    assert missing.body["description"] == "Bad Request: there is no video in the request"


@pytest.mark.parametrize("kind", ["photo", "video", "document", "animation"])
def test_media_messages(state: EmulatorState, kind: str) -> None:
    method = "send" + kind.capitalize()
    by_url = state.call(
        TOKEN,
        method,
        {
            "chat_id": 1,
            kind: "https://files.example/f",
            "caption": "*c*",
            "parse_mode": "MarkdownV2",
        },
    )
    message = Message.model_validate(by_url.body["result"])
    assert message.caption == "c"
    sent = getattr(message, kind)
    file_id = sent[-1].file_id if kind == "photo" else sent.file_id
    assert file_id.startswith(f"emu-{kind}-")
    by_id = state.call(TOKEN, method, {"chat_id": 1, kind: file_id})
    again = Message.model_validate(by_id.body["result"])
    resent = getattr(again, kind)
    assert (resent[-1] if kind == "photo" else resent).file_id == file_id


def test_copy_message_answers_a_message_id(state: EmulatorState) -> None:
    state.configure({"posts": {-100: [4]}})
    reply = state.call(TOKEN, "copyMessage", {"chat_id": 9, "from_chat_id": -100, "message_id": 4})
    assert MessageId.model_validate(reply.body["result"]).message_id == 1
    assert state.recorder.messages()[0].chat_id == 9


def test_copy_message_finds_what_was_sent_or_received(state: EmulatorState) -> None:
    sent = state.call(TOKEN, "sendMessage", {"chat_id": -100, "text": "post"})
    copy = {"chat_id": 9, "from_chat_id": -100, "message_id": sent.body["result"]["message_id"]}
    assert state.call(TOKEN, "copyMessage", copy).status == 200
    state.inject_updates(TOKEN, [_message_update("forwarded")])  # message 1 in chat 42
    received = {"chat_id": 9, "from_chat_id": 42, "message_id": 1}
    assert state.call(TOKEN, "copyMessage", received).status == 200
    # Another bot's private chat with that user is another chat: nothing to copy there.
    assert state.call("456:def", "copyMessage", received).status == 400


@pytest.mark.parametrize(
    ("source", "description"),
    [
        pytest.param(
            {"from_chat_id": -100, "message_id": 5},
            "Bad Request: message to copy not found",
            id="unknown-message",
        ),
        pytest.param(
            {"from_chat_id": 7, "message_id": 4},
            "Bad Request: chat not found",
            id="unknown-source-chat",
        ),
    ],
)
def test_copy_message_refuses_an_unreadable_source(
    state: EmulatorState, source: dict[str, int], description: str
) -> None:
    state.configure({"posts": {-100: [4], 7: [4]}})
    reply = state.call(TOKEN, "copyMessage", {"chat_id": 9, **source})
    assert (reply.status, reply.body["description"]) == (400, description)
    assert not state.recorder.messages()
    assert [r.chat_id for r in state.recorder.refusals()] == [9]


def test_media_group(state: EmulatorState) -> None:
    media = [
        {"type": "photo", "media": "https://a.example/1", "caption": "one"},
        {"type": "video", "media": "file-id-2"},
    ]
    reply = state.call(TOKEN, "sendMediaGroup", {"chat_id": 3, "media": media})
    messages = [Message.model_validate(m) for m in reply.body["result"]]
    assert [m.message_id for m in messages] == [1, 2]
    assert messages[0].media_group_id == messages[1].media_group_id is not None
    assert messages[0].caption == "one"
    assert messages[1].video is not None and messages[1].video.file_id == "file-id-2"
    assert state.recorder.summary().total == 1  # one request, one delivery record
    single = state.call(TOKEN, "sendMediaGroup", {"chat_id": 3, "media": media[:1]})
    assert single.status == 400


def test_recording_and_summary(clock: ManualClock) -> None:
    state = EmulatorState(EmulatorConfig(limits=Limits(rate=3, per_chat_rate=0)), clock=clock)
    for chat in (1, 2, 1, 3):
        state.call(TOKEN, "sendMessage", {"chat_id": chat, "text": f"to {chat}"})
    clock.advance(1.0)
    state.call(TOKEN, "sendMessage", {"chat_id": 1, "text": "third"})
    state.call("456:def", "sendMessage", {"chat_id": 1, "text": "other bot"})
    state.call(TOKEN, "sendMessage", {"chat_id": 1})  # refused: no text
    messages = state.recorder.messages(token=TOKEN, chat_id=1)
    assert [m.payload["text"] for m in messages] == ["to 1", "to 1", "third"]
    assert [m.message_id for m in messages] == [1, 2, 3]
    assert messages[0].wall.tzinfo is not None
    assert messages[-1].monotonic - messages[0].monotonic == pytest.approx(1.0)
    summary = state.recorder.summary()
    assert summary.total == 5
    assert summary.per_method == {"sendMessage": 5}
    assert summary.per_chat == {1: 4, 2: 1}
    assert summary.duplicates == {TOKEN: {1: 3}}
    assert summary.max_per_second == {TOKEN: 3, "456:def": 1}
    assert summary.too_many_requests == {TOKEN: 1}
    assert summary.errors == {429: 1, 400: 1}
    scoped = state.recorder.summary(token="456:def")
    assert (scoped.total, scoped.duplicates, scoped.errors) == (1, {}, {})


def test_edits_and_callback_answers_are_recorded_but_not_sends(state: EmulatorState) -> None:
    edited = state.call(TOKEN, "editMessageText", {"chat_id": 1, "message_id": 8, "text": "new"})
    message = Message.model_validate(edited.body["result"])
    assert (message.message_id, message.text) == (8, "new")
    assert message.edit_date is not None
    answered = state.call(TOKEN, "answerCallbackQuery", {"callback_query_id": "q1", "text": "ok"})
    assert answered.body == {"ok": True, "result": True}
    commands = [{"command": "start", "description": "Start"}]
    assert state.call(TOKEN, "setMyCommands", {"commands": commands}).body["result"] is True
    webhook = {"url": "https://bots.example/hook", "secret_token": "s3cret"}
    assert state.call(TOKEN, "setWebhook", webhook).body["result"] is True
    assert state.call(TOKEN, "setWebhook", {"url": "http://plain"}).status == 400
    for method in ("deleteWebhook", "close", "logOut"):
        assert state.call(TOKEN, method, {}).body == {"ok": True, "result": True}
    summary = state.recorder.summary()
    assert summary.total == 0
    assert summary.per_method == {
        "editMessageText": 1,
        "answerCallbackQuery": 1,
        "setMyCommands": 1,
        "setWebhook": 1,
    }
    [recorded] = state.recorder.messages(method="setWebhook")
    assert recorded.payload == webhook


def test_error_faults_are_seeded_and_deliver_nothing(clock: ManualClock) -> None:
    def run() -> list[int]:
        config = EmulatorConfig(limits=OFF, faults=Faults(error_ratio=0.5), seed=7)
        state = EmulatorState(config, clock=clock)
        statuses = [
            state.call(TOKEN, "sendMessage", {"chat_id": i, "text": "x"}).status for i in range(200)
        ]
        assert state.recorder.summary().total == statuses.count(200)
        return statuses

    first = run()
    assert first == run()
    assert set(first) == {200, 500, 502}
    assert 60 < first.count(200) < 140


def test_dropped_answers_are_recorded_deliveries(state: EmulatorState) -> None:
    state.configure({"faults": {"drop_ratio": 1.0}})
    reply = state.call(TOKEN, "sendMessage", {"chat_id": 1, "text": "x"})
    assert reply.dropped
    assert reply.status == 200
    assert state.recorder.messages()[0].dropped
    assert state.recorder.summary().dropped == 1
    assert not state.call(TOKEN, "getMe", {}).dropped  # only sends are dropped


def test_latency_is_fixed_plus_seeded_jitter(clock: ManualClock) -> None:
    config = EmulatorConfig(faults=Faults(latency_ms=80, jitter_ms=20), seed=3)
    draws = [EmulatorState(config, clock=clock).latency() for _ in range(2)]
    assert draws[0] == draws[1]
    state = EmulatorState(config, clock=clock)
    assert all(0.08 <= state.latency() <= 0.1 for _ in range(100))
    assert EmulatorState(clock=clock).latency() == 0


def test_configure_merges_and_validates(state: EmulatorState) -> None:
    config = state.configure({"limits": {"rate": 5}, "blocked": [1, 2]})
    assert config.limits == Limits(rate=5, paid_rate=0, per_chat_rate=0)
    assert config.blocked == {1, 2}
    assert config.not_found == {7}
    assert state.call(TOKEN, "sendMessage", {"chat_id": 2, "text": "x"}).status == 403
    with pytest.raises(ValidationError):
        state.configure({"limits": {"rat": 5}})
    with pytest.raises(ValidationError):
        state.configure({"faults": {"error_ratio": 2}})
    assert state.config.limits.rate == 5


def test_reset_forgets_everything_and_restores_the_startup_config(state: EmulatorState) -> None:
    state.configure({"blocked": [1]})
    state.call(TOKEN, "sendMessage", {"chat_id": 1, "text": "x"})
    state.call(TOKEN, "sendMessage", {"chat_id": 2, "text": "x"})
    state.inject_updates(TOKEN, [{"message": {}}])
    state.reset()
    assert state.config.blocked == {5}
    assert state.recorder.summary().total == 0
    assert state.recorder.summary().errors == {}
    assert state.call(TOKEN, "getUpdates", {}).body["result"] == []
    reply = state.call(TOKEN, "sendMessage", {"chat_id": 2, "text": "x"})
    assert reply.body["result"]["message_id"] == 1


def _message_update(text: str) -> dict[str, Any]:
    return {
        "message": {
            "message_id": 1,
            "date": 1700000000,
            "text": text,
            "chat": {"id": 42, "type": "private"},
            "from": {"id": 42, "is_bot": False, "first_name": "Ann"},
        }
    }


def test_updates_are_numbered_and_confirmed_by_offset(state: EmulatorState) -> None:
    assert state.inject_updates(TOKEN, [_message_update("a"), _message_update("b")]) == [1, 2]
    assert state.inject_updates("456:def", [_message_update("c")]) == [1]
    updates = state.call(TOKEN, "getUpdates", {}).body["result"]
    messages = [Update.model_validate(u).message for u in updates]
    assert [m.text for m in messages if m] == ["a", "b"]
    assert len(state.call(TOKEN, "getUpdates", {"limit": 1}).body["result"]) == 1
    assert state.call(TOKEN, "getUpdates", {"offset": 2}).body["result"][0]["update_id"] == 2
    # Confirmed updates are gone for good, even without an offset.
    assert [u["update_id"] for u in state.call(TOKEN, "getUpdates", {}).body["result"]] == [2]
    assert state.call(TOKEN, "getUpdates", {"offset": 3}).body["result"] == []
    assert state.inject_updates(TOKEN, [_message_update("d")]) == [3]
    assert state.call(TOKEN, "getUpdates", {"offset": -1}).body["result"][0]["update_id"] == 3
    with pytest.raises(ValueError, match="not a bot token"):
        state.inject_updates("nope", [])


async def test_long_poll_wakes_on_injection(state: EmulatorState) -> None:
    started = time.monotonic()
    poll = asyncio.create_task(state.handle(TOKEN, "getUpdates", {"timeout": 10}))
    await asyncio.sleep(0.05)
    assert not poll.done()
    state.inject_updates(TOKEN, [_message_update("late")])
    reply = await asyncio.wait_for(poll, 2)
    assert [u["message"]["text"] for u in reply.body["result"]] == ["late"]
    assert time.monotonic() - started < 2


async def test_long_poll_times_out_empty_and_wakes_on_shutdown(state: EmulatorState) -> None:
    started = time.monotonic()
    reply = await state.handle(TOKEN, "getUpdates", {"timeout": 1})
    assert reply.body == {"ok": True, "result": []}
    assert time.monotonic() - started >= 0.9
    poll = asyncio.create_task(state.handle(TOKEN, "getUpdates", {"timeout": 30}))
    await asyncio.sleep(0.05)
    state.wake_pollers()
    assert (await asyncio.wait_for(poll, 2)).body["result"] == []
