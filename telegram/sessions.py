"""aiogram's HTTP session as Herald builds it: orjson for the Bot API's JSON, and less work
per request than aiogram's defaults. The one way Herald constructs a session.

Per request, aiogram (3.31) by default

- encodes nested parameters (a keyboard, link preview options, an album's media) and decodes
  every answer with the ``json`` module; orjson does both in a fraction of the time;
- builds an aiohttp ``FormData``, which makes a multipart writer (and a uuid4 for its
  boundary) even for the urlencoded body it then sends;
- validates the answer as ``Response[<the method's result type>]``, a pydantic generic that
  pydantic caches only weakly: once collected it is created again, schema and all, which
  a profile of a sending process showed as about 9% of its time.

:class:`Session` keeps each ``Response[...]`` it used and sends an urlencoded body built
directly when there is no file to upload; uploads go through aiogram's form as before.

A session made with ``ids_only`` reads of a successful answer only what a sender records:
the message ids, as :class:`Sent` (an album's as a list of them), or ``True``. Validating
a sent ``Message`` with its chat, sender and entities was about a tenth of a sending
process's time, for one integer. Any other answer (an error, a result of another shape)
goes through aiogram's checks as before, so its exceptions and outcomes are the same.

It also says when a request leaves: :func:`departing` names a callback that runs as the
request's body is handed to the socket. The sender counts a send against the limits at that
instant, not when it decided to send: under load a request can wait tens of milliseconds
for a connection or for the task that writes its body (aiohttp writes it a loop iteration
after the headers), and Telegram counts arrivals.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, cast
from urllib.parse import urlencode

import aiogram
import orjson
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.methods import Response, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import InputFile
from aiohttp import ClientSession, FormData, TraceConfig, TraceRequestChunkSentParams, payload
from aiohttp.hdrs import USER_AGENT
from aiohttp.http import SERVER_SOFTWARE

__all__ = ["Sent", "Session", "departing", "dumps", "new_session"]

_URLENCODED = "application/x-www-form-urlencoded"

# The departure of the request the current task is making (a context variable follows the
# task into the one aiohttp writes the body from, which copies its context).
_departure: ContextVar[_Departure | None] = ContextVar("departure", default=None)


class _Departure:
    __slots__ = ("callback",)

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback: Callable[[], None] | None = callback

    def __call__(self) -> None:
        # The first chunk of the first request only: a body written in parts leaves once.
        callback, self.callback = self.callback, None
        if callback is not None:
            callback()


@contextlib.contextmanager
def departing(callback: Callable[[], None] | None) -> Iterator[None]:
    """A request made inside calls `callback` once, as its body goes to the socket."""
    token = _departure.set(None if callback is None else _Departure(callback))
    try:
        yield
    finally:
        _departure.reset(token)


async def _chunk_sent(
    session: ClientSession, context: Any, params: TraceRequestChunkSentParams
) -> None:
    departure = _departure.get()
    if departure is not None:
        departure()


def _traces() -> TraceConfig:
    trace = TraceConfig()
    trace.on_request_chunk_sent.append(_chunk_sent)
    trace.freeze()
    return trace


def dumps(value: Any) -> str:
    """JSON text, as aiogram wants it (orjson gives bytes)."""
    return orjson.dumps(value).decode()


@dataclass(frozen=True, slots=True)
class Sent:
    """A message the Bot API says it sent, as an ``ids_only`` session answers it."""

    message_id: int


def _sent(content: str) -> Sent | list[Sent] | bool | None:
    """The ids of a successful answer, or None when it is not one of that shape."""
    try:
        answer = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(answer, dict) or answer.get("ok") is not True:
        return None
    result = answer.get("result")
    if result is True:
        return True
    if isinstance(result, dict):
        return _message(result)
    if isinstance(result, list) and result:
        messages = [_message(item) for item in result]
        return None if None in messages else cast(list[Sent], messages)
    return None


def _message(result: Any) -> Sent | None:
    message_id = result.get("message_id") if isinstance(result, dict) else None
    # bool is an int to Python, not a message id to Telegram.
    if type(message_id) is not int:
        return None
    return Sent(message_id)


class Session(AiohttpSession):
    """AiohttpSession with orjson, cached answer types and direct urlencoded bodies."""

    def __init__(self, *, ids_only: bool = False, **options: Any) -> None:
        super().__init__(json_loads=orjson.loads, json_dumps=dumps, **options)
        self._ids_only = ids_only
        # Strong references, so that pydantic's weak cache of generics keeps them.
        self._responses: dict[Any, Any] = {}

    async def create_session(self) -> ClientSession:
        # aiogram's, with the departure trace: it takes no trace configs of its own.
        if self._should_reset_connector:
            await self.close()
        if self._session is None or self._session.closed:
            self._session = ClientSession(
                connector=self._connector_type(**self._connector_init),
                headers={USER_AGENT: f"{SERVER_SOFTWARE} aiogram/{aiogram.__version__}"},
                trace_configs=[_traces()],
            )
            self._should_reset_connector = False
        return self._session

    def check_response(
        self, bot: Bot, method: TelegramMethod[TelegramType], status_code: int, content: str
    ) -> Response[TelegramType]:
        if self._ids_only and HTTPStatus.OK <= status_code <= HTTPStatus.IM_USED:
            sent = _sent(content)
            if sent is not None:
                # aiogram hands the result on unread; the one reader is TelegramClient.
                return cast(Response[TelegramType], Response.model_construct(ok=True, result=sent))
        returning = method.__returning__
        if returning not in self._responses:
            self._responses[returning] = Response[returning]  # type: ignore[valid-type]
        return super().check_response(bot, method, status_code, content)

    def build_form_data(self, bot: Bot, method: TelegramMethod[TelegramType]) -> FormData:
        files: dict[str, InputFile] = {}
        fields: list[tuple[str, str]] = []
        for key, value in method.model_dump(warnings=False).items():
            prepared = self.prepare_value(value, bot=bot, files=files)
            if prepared:
                fields.append((key, prepared))
        if files:
            return super().build_form_data(bot, method)
        # What FormData would send for these fields, without its multipart writer.
        body = payload.BytesPayload(urlencode(fields).encode(), content_type=_URLENCODED)
        return body  # type: ignore[return-value]  # aiohttp posts any payload as data


def new_session(api_url: str, *, ids_only: bool = False, **options: Any) -> Session:
    """A session to the Bot API at `api_url`; `options` are AiohttpSession's (``limit``)."""
    return Session(api=TelegramAPIServer.from_base(api_url), ids_only=ids_only, **options)
