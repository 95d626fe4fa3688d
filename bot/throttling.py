"""Honouring Telegram's ``retry_after`` for the bot's own requests.

The bot sends little (replies, edits, reports), but a reply right after another in the same
chat can meet Telegram's per-chat limit. Every request waits out a 429 and tries again a few
times, rather than failing the handler; getUpdates is left alone (aiogram's polling backs
off by itself).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods import Response, TelegramMethod
from aiogram.methods.base import TelegramType

if TYPE_CHECKING:
    from aiogram import Bot

__all__ = ["RetryAfter"]

logger = logging.getLogger(__name__)


class RetryAfter(BaseRequestMiddleware):
    def __init__(self, *, attempts: int = 3, longest_wait: float = 30.0) -> None:
        # Bounded both ways: a handler that waits minutes helps nobody, and the admin can
        # repeat the command.
        self._attempts = attempts
        self._longest_wait = longest_wait

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        if method.__api_method__ == "getUpdates":
            return await make_request(bot, method)
        for _ in range(self._attempts - 1):
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as exc:
                if exc.retry_after > self._longest_wait:
                    raise
                logger.info(
                    "Telegram asked to wait %ss before %s", exc.retry_after, type(method).__name__
                )
                await asyncio.sleep(exc.retry_after)
        return await make_request(bot, method)
