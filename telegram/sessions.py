"""aiogram's HTTP session with orjson for the Bot API's JSON, the one way Herald builds one.

aiogram encodes every nested parameter (a keyboard, link preview options, an album's media)
and decodes every answer with the ``json`` module by default; orjson does both in a fraction
of the time, which a sender pays once per message.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

__all__ = ["dumps", "new_session"]


def dumps(value: Any) -> str:
    """JSON text, as aiogram wants it (orjson gives bytes)."""
    return orjson.dumps(value).decode()


def new_session(api_url: str, **options: Any) -> AiohttpSession:
    """A session to the Bot API at `api_url`; `options` are AiohttpSession's (``limit``)."""
    return AiohttpSession(
        api=TelegramAPIServer.from_base(api_url),
        json_loads=orjson.loads,
        json_dumps=dumps,
        **options,
    )
