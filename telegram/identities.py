"""Who a token belongs to, by Telegram's word (getMe): the one check a token passes before
Herald sends anything with it. The bot id is getMe's, never read from the token's text, so a
Secret holding ``<someone else's id>:anything`` is refused instead of taken for their bot."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiogram import Bot
from aiogram.exceptions import TelegramNotFound, TelegramUnauthorizedError
from aiogram.utils.token import TokenValidationError

from herald.telegram import sessions

__all__ = ["Identity", "Refused", "Unreachable", "Verdict", "verify"]


@dataclass(frozen=True, slots=True)
class Identity:
    """getMe's answer: the token is the bot's."""

    bot_id: int
    username: str


@dataclass(frozen=True, slots=True)
class Refused:
    """Telegram refused the token (401, or 404 for a token it does not know): never use it."""

    message: str


@dataclass(frozen=True, slots=True)
class Unreachable:
    """No answer from Telegram: the token is neither verified nor refused yet."""

    message: str


Verdict = Identity | Refused | Unreachable


async def verify(token: str, *, api_url: str, seconds: float = 10.0) -> Verdict:
    """getMe for ``token``, bounded by ``seconds``."""
    try:
        bot = Bot(token, session=sessions.new_session(api_url))
    except TokenValidationError:
        return Refused("the token is not <digits>:<secret>")
    try:
        async with asyncio.timeout(seconds + 1):
            me = await bot.get_me(request_timeout=int(seconds))
    except (TelegramUnauthorizedError, TelegramNotFound) as error:
        return Refused(f"Telegram refused the token: {error.message}")
    except Exception as error:  # a network error, a 5xx, a proxy's page: ask again later
        return Unreachable(f"getMe failed: {type(error).__name__}: {error}")
    finally:
        await bot.session.close()
    return Identity(bot_id=me.id, username=me.username or "")
