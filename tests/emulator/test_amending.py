"""deleteMessage, editMessageText and editMessageCaption, and what each chat sees after."""

from __future__ import annotations

import pytest

from herald.emulator.clocks import ManualClock
from herald.emulator.emulating import DELETE_WINDOW_SECONDS, EmulatorState
from herald.emulator.settings import EmulatorConfig, Limits

TOKEN = "123:abc"
OFF = Limits(rate=0, paid_rate=0, per_chat_rate=0)
KEYBOARD = {"inline_keyboard": [[{"text": "Open", "url": "https://example.com"}]]}


@pytest.fixture
def state(clock: ManualClock) -> EmulatorState:
    return EmulatorState(EmulatorConfig(limits=OFF), clock=clock)


def _send(state: EmulatorState, chat_id: int, **params: object) -> int:
    reply = state.call(TOKEN, "sendMessage", {"chat_id": chat_id, "text": "typo", **params})
    assert reply.status == 200
    return int(reply.body["result"]["message_id"])


def _error(state: EmulatorState, method: str, params: dict[str, object]) -> str:
    reply = state.call(TOKEN, method, params)
    assert reply.status == 400
    return str(reply.body["description"])


def test_a_deleted_message_is_gone_from_the_chat(state: EmulatorState) -> None:
    first = _send(state, 42)
    second = _send(state, 42, text="stays")
    assert state.call(TOKEN, "deleteMessage", {"chat_id": 42, "message_id": first}).status == 200
    assert [m["message_id"] for m in state.chat(TOKEN, 42)] == [second]
    again = _error(state, "deleteMessage", {"chat_id": 42, "message_id": first})
    assert again == "Bad Request: message to delete not found"
    assert _error(state, "editMessageText", {"chat_id": 42, "message_id": first, "text": "x"}) == (
        "Bad Request: message to edit not found"
    )


def test_a_message_older_than_48_hours_cannot_be_deleted(
    state: EmulatorState, clock: ManualClock
) -> None:
    message_id = _send(state, 42)
    clock.advance(DELETE_WINDOW_SECONDS + 1)
    description = _error(state, "deleteMessage", {"chat_id": 42, "message_id": message_id})
    assert description == "Bad Request: message can't be deleted for everyone"
    assert len(state.chat(TOKEN, 42)) == 1


def test_an_edit_changes_what_the_chat_sees_and_keeps_what_it_is_given(
    state: EmulatorState,
) -> None:
    message_id = _send(state, 42, reply_markup=KEYBOARD)
    edit = {"chat_id": 42, "message_id": message_id, "text": "fixed", "reply_markup": KEYBOARD}
    assert state.call(TOKEN, "editMessageText", edit).status == 200
    (seen,) = state.chat(TOKEN, 42)
    assert seen["text"] == "fixed"
    assert seen["reply_markup"] == KEYBOARD
    assert _error(state, "editMessageText", edit).startswith("Bad Request: message is not modified")
    # Without reply_markup, Telegram drops the keyboard.
    plain = {"chat_id": 42, "message_id": message_id, "text": "fixed again"}
    assert state.call(TOKEN, "editMessageText", plain).status == 200
    assert "reply_markup" not in state.chat(TOKEN, 42)[0]


def test_an_edit_of_a_caption(state: EmulatorState) -> None:
    reply = state.call(
        TOKEN,
        "sendPhoto",
        {"chat_id": 42, "photo": "https://example.com/a.jpg", "caption": "typo"},
    )
    message_id = reply.body["result"]["message_id"]
    edit = {"chat_id": 42, "message_id": message_id, "caption": "fixed"}
    assert state.call(TOKEN, "editMessageCaption", edit).status == 200
    (seen,) = state.chat(TOKEN, 42)
    assert seen["caption"] == "fixed"
    assert "photo" in seen
    text = {"chat_id": 42, "message_id": message_id, "text": "fixed"}
    assert _error(state, "editMessageText", text) == (
        "Bad Request: there is no text in the message to edit"
    )
    missing = {"chat_id": 42, "message_id": 99, "caption": "fixed"}
    assert _error(state, "editMessageCaption", missing) == "Bad Request: message to edit not found"
