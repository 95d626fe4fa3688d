"""The Bot API through aiogram: one rendered call in, one :class:`Outcome` out. aiogram's
exceptions are translated here, once, and nowhere else."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson
from aiogram import Bot
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import (
    CopyMessage,
    DeleteMessage,
    DeleteMessages,
    EditMessageCaption,
    EditMessageText,
    SendAnimation,
    SendAudio,
    SendDocument,
    SendMediaGroup,
    SendMessage,
    SendPhoto,
    SendVideo,
    SendVoice,
    TelegramMethod,
)
from aiogram.types import (
    InlineKeyboardMarkup,
    InputMediaAudio,
    InputMediaDocument,
    InputMediaPhoto,
    InputMediaVideo,
    LinkPreviewOptions,
)

from herald.telegram import sessions
from herald.telegram.outcomes import Outcome, OutcomeKind
from herald.telegram.rendering import Rendered

__all__ = ["TelegramClient", "method_of", "outcome_of"]

# How much of a non-JSON answer the row's reason keeps.
_PAGE_SHOWN = 80

_METHODS: dict[str, type[TelegramMethod[Any]]] = {
    "sendMessage": SendMessage,
    "sendPhoto": SendPhoto,
    "sendVideo": SendVideo,
    "sendDocument": SendDocument,
    "sendAnimation": SendAnimation,
    "sendAudio": SendAudio,
    "sendVoice": SendVoice,
    "sendMediaGroup": SendMediaGroup,
    "copyMessage": CopyMessage,
    "editMessageText": EditMessageText,
    "editMessageCaption": EditMessageCaption,
    "deleteMessage": DeleteMessage,
    "deleteMessages": DeleteMessages,
}
_INPUT_MEDIA: dict[
    str, type[InputMediaPhoto | InputMediaVideo | InputMediaDocument | InputMediaAudio]
] = {
    "photo": InputMediaPhoto,
    "video": InputMediaVideo,
    "document": InputMediaDocument,
    "audio": InputMediaAudio,
}


# What differs between two recipients of one content variant; everything else of a call
# (the markup, the keyboard, the flags, the media) is the same for all of them.
_PER_RECIPIENT = ("chat_id", "text", "caption", "message_effect_id")


def method_of(rendered: Rendered) -> TelegramMethod[Any]:
    """The aiogram method object of a rendered call, its nested parts as aiogram's types.

    Built once per variant (validated, its keyboard parsed) and copied per recipient with
    only the recipient's parts changed: pydantic's copy does not validate again."""
    if rendered.method == "sendMediaGroup":
        return _validated(rendered.method, rendered.params)  # the caption is inside media
    params = rendered.params
    shared = {key: value for key, value in params.items() if key not in _PER_RECIPIENT}
    template = _template(rendered.method, orjson.dumps(shared))
    fields = type(template).model_fields
    return template.model_copy(
        update={key: params.get(key) for key in _PER_RECIPIENT if key in fields}
    )


@functools.lru_cache(maxsize=256)
def _template(method: str, shared: bytes) -> TelegramMethod[Any]:
    """A variant's call with placeholders where each recipient's parts go."""
    placeholders: dict[str, Any] = {"chat_id": 0}
    if method == "sendMessage":
        placeholders["text"] = ""  # required
    return _validated(method, {**orjson.loads(shared), **placeholders})


def _validated(method: str, rendered: dict[str, Any]) -> TelegramMethod[Any]:
    params = dict(rendered)
    markup = params.pop("reply_markup", None)
    if markup is not None:
        params["reply_markup"] = _keyboard(orjson.dumps(markup))
    preview = params.pop("link_preview_options", None)
    if preview is not None:
        params["link_preview_options"] = LinkPreviewOptions.model_validate(preview)
    if method == "sendMediaGroup":
        params["media"] = [
            _INPUT_MEDIA[item["type"]].model_validate(item) for item in params["media"]
        ]
    return _METHODS[method](**params)


@functools.lru_cache(maxsize=256)
def _keyboard(encoded: bytes) -> InlineKeyboardMarkup:
    """A rendered keyboard as aiogram's type: one per broadcast and variant, kept."""
    return InlineKeyboardMarkup.model_validate_json(encoded)


def outcome_of(error: BaseException) -> Outcome:
    """The outcome an exception from a Bot API call stands for."""
    if isinstance(error, TelegramRetryAfter):
        return Outcome(
            kind=OutcomeKind.RETRY_AFTER, retry_after=error.retry_after, description=error.message
        )
    if isinstance(error, TelegramForbiddenError):
        return Outcome(kind=OutcomeKind.FORBIDDEN, description=error.message)
    if isinstance(error, TelegramUnauthorizedError):
        return Outcome(kind=OutcomeKind.UNAUTHORIZED, description=error.message)
    if isinstance(
        error,
        TelegramBadRequest | TelegramNotFound | TelegramMigrateToChat | TelegramEntityTooLarge,
    ):
        return Outcome(kind=OutcomeKind.BAD_REQUEST, description=error.message)
    if isinstance(error, TelegramServerError):
        return Outcome(kind=OutcomeKind.SERVER_ERROR, description=error.message)
    if isinstance(error, TelegramNetworkError):
        # aiogram chains the aiohttp error: a refused connection sent nothing; a timeout
        # or a connection cut after the request was written may have delivered the message.
        cause = error.__cause__
        if isinstance(cause, aiohttp.ClientConnectorError):
            return Outcome(kind=OutcomeKind.NOT_SENT, description=error.message)
        return Outcome(kind=OutcomeKind.MAYBE_SENT, description=error.message)
    if isinstance(error, TelegramAPIError):
        return Outcome(kind=OutcomeKind.BAD_REQUEST, description=error.message)
    if isinstance(error, ClientDecodeError) and isinstance(error.data, str):
        # Not JSON at all: a proxy's error page (an HTML 502) in front of the Bot API, which
        # did not take the message. (JSON that is not the expected result came from the Bot
        # API itself, which may have sent it: that is the catch-all below.)
        page = " ".join(str(error.data).split())[:_PAGE_SHOWN]
        return Outcome(kind=OutcomeKind.SERVER_ERROR, description=f"Not a Bot API answer: {page}")
    # Anything else (a decode error of an answer, a timeout of our own): it may have gone out.
    return Outcome(kind=OutcomeKind.MAYBE_SENT, description=type(error).__name__)


class TelegramClient:
    """One bot's HTTP session, with enough connections for every request in flight."""

    def __init__(self, token: str, *, api_url: str, timeout: float, connections: int) -> None:
        session = sessions.new_session(api_url, ids_only=True, limit=connections)
        session.timeout = timeout
        self._bot = Bot(token, session=session)
        self._timeout = timeout

    async def send(
        self, rendered: Rendered, *, departed: Callable[[], None] | None = None
    ) -> Outcome:
        """Send; `departed` runs as the request is handed to the socket (not if it never is)."""
        method = method_of(rendered)
        try:
            async with asyncio.timeout(self._timeout + 1):
                with sessions.departing(departed):
                    result = await self._bot(method, request_timeout=int(self._timeout))
        except Exception as error:  # every failure is an outcome; nothing leaves a row claimed
            return outcome_of(error)
        if isinstance(result, list):
            # An album is one message per item: recall deletes them all.
            ids = tuple(int(message.message_id) for message in result)
            return Outcome(kind=OutcomeKind.OK, message_id=ids[0] if ids else None, message_ids=ids)
        # deleteMessage answers True; a send or an edit, the message (its id: Sent).
        message_id = getattr(result, "message_id", None)
        ids = (int(message_id),) if message_id is not None else ()
        return Outcome(kind=OutcomeKind.OK, message_id=message_id, message_ids=ids)

    async def close(self) -> None:
        await self._bot.session.close()
