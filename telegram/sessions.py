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
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import orjson
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.methods import Response, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import InputFile
from aiohttp import FormData, payload

__all__ = ["Session", "dumps", "new_session"]

_URLENCODED = "application/x-www-form-urlencoded"


def dumps(value: Any) -> str:
    """JSON text, as aiogram wants it (orjson gives bytes)."""
    return orjson.dumps(value).decode()


class Session(AiohttpSession):
    """AiohttpSession with orjson, cached answer types and direct urlencoded bodies."""

    def __init__(self, **options: Any) -> None:
        super().__init__(json_loads=orjson.loads, json_dumps=dumps, **options)
        # Strong references, so that pydantic's weak cache of generics keeps them.
        self._responses: dict[Any, Any] = {}

    def check_response(
        self, bot: Bot, method: TelegramMethod[TelegramType], status_code: int, content: str
    ) -> Response[TelegramType]:
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


def new_session(api_url: str, **options: Any) -> Session:
    """A session to the Bot API at `api_url`; `options` are AiohttpSession's (``limit``)."""
    return Session(api=TelegramAPIServer.from_base(api_url), **options)
