"""A sending session reads only the ids of a successful answer, and treats every other
answer exactly as aiogram's own checks do: the same exception for the same answer."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from aiogram import Bot
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramRetryAfter,
)
from aiogram.methods import DeleteMessage, SendMediaGroup, SendMessage, TelegramMethod
from aiogram.types import InputMediaPhoto

from herald.telegram.sessions import Sent, Session, new_session

TOKEN = "123456:test-token"
CHAT = {"id": 42, "type": "private", "first_name": "Ann"}


def message(message_id: int) -> dict[str, object]:
    return {"message_id": message_id, "date": 1_700_000_000, "chat": CHAT, "text": "Hello"}


def answer(result: object) -> str:
    return orjson.dumps({"ok": True, "result": result}).decode()


SEND = SendMessage(chat_id=42, text="Hello")
ALBUM = SendMediaGroup(chat_id=42, media=[InputMediaPhoto(media="A"), InputMediaPhoto(media="B")])
DELETE = DeleteMessage(chat_id=42, message_id=7)

SUCCESSES: list[tuple[str, TelegramMethod[Any], str, object]] = [
    ("message", SEND, answer(message(7)), Sent(7)),
    ("album", ALBUM, answer([message(7), message(8)]), [Sent(7), Sent(8)]),
    ("deleted", DELETE, answer(True), True),
]


def check(session: Session, method: TelegramMethod[Any], status: int, content: str) -> object:
    bot = Bot(TOKEN, session=session)
    return session.check_response(bot, method, status, content).result


@pytest.mark.parametrize(
    ("method", "content", "expected"),
    [case[1:] for case in SUCCESSES],
    ids=[case[0] for case in SUCCESSES],
)
def test_a_success_is_read_as_its_ids_alone(
    method: TelegramMethod[Any], content: str, expected: object
) -> None:
    lean = check(new_session("http://bot.api", ids_only=True), method, 200, content)
    full = check(new_session("http://bot.api"), method, 200, content)
    assert lean == expected
    # The same ids as aiogram's Message, which a session without ids_only still builds.
    assert ids(lean) == ids(full)


def ids(result: object) -> object:
    if isinstance(result, list):
        return [item.message_id for item in result]
    return getattr(result, "message_id", result)


def refusal(code: int, description: str, **parameters: int) -> str:
    body: dict[str, object] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return orjson.dumps(body).decode()


OTHERS: list[tuple[str, TelegramMethod[Any], int, str, type[Exception]]] = [
    (
        "429",
        SEND,
        429,
        refusal(429, "Too Many Requests: retry after 3", retry_after=3),
        TelegramRetryAfter,
    ),
    (
        "403",
        SEND,
        403,
        refusal(403, "Forbidden: bot was blocked by the user"),
        TelegramForbiddenError,
    ),
    ("400", SEND, 400, refusal(400, "Bad Request: chat not found"), TelegramBadRequest),
    # A 200 whose result is no message: it came from the Bot API, which may have sent it.
    ("not-a-message", SEND, 200, answer("sent"), ClientDecodeError),
    ("id-not-an-integer", SEND, 200, answer({"message_id": True}), ClientDecodeError),
    ("album-with-a-stray", ALBUM, 200, answer([message(7), "x"]), ClientDecodeError),
    ("ok-false-with-200", SEND, 200, refusal(400, "Bad Request: odd"), TelegramAPIError),
    ("not-json", SEND, 200, "<html>502</html>", ClientDecodeError),
]


@pytest.mark.parametrize(
    ("method", "status", "content", "error"),
    [case[1:] for case in OTHERS],
    ids=[case[0] for case in OTHERS],
)
def test_any_other_answer_raises_what_aiogram_raises(
    method: TelegramMethod[Any], status: int, content: str, error: type[Exception]
) -> None:
    for session in (new_session("http://bot.api", ids_only=True), new_session("http://bot.api")):
        with pytest.raises(error):
            check(session, method, status, content)
