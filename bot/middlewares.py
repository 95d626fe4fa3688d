"""Cross-cutting steps of every update: the user's language, the subscribers of the bot the
update came to, the subscriber refresh, and the one place where admin rights are checked."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.types import CallbackQuery, Message, TelegramObject, User

from herald.bot.metrics import Metrics
from herald.bot.rosters import ServedBot
from herald.bot.stores import SubscriberBook, SubscriberProfile, SubscriberStore
from herald.bot.translations import Translations

__all__ = ["AdminOnly", "BotSubscribers", "SubscriberRefresh", "UserTexts", "profile_of"]

logger = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


def profile_of(user: User) -> SubscriberProfile:
    """The subscriber row's fields from a Telegram user (a private chat's id is the user's)."""
    return SubscriberProfile(
        chat_id=user.id,
        username=user.username,
        first_name=user.first_name,
        last_name=user.last_name,
        language_code=user.language_code,
    )


class UserTexts(BaseMiddleware):
    """Puts ``texts``, the user's language's texts, into every handler's arguments."""

    def __init__(self, translations: Translations) -> None:
        self._translations = translations

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        served: ServedBot | None = data.get("served_bot")
        data["texts"] = self._translations.for_language(
            user.language_code if user else None,
            default=served.default_language if served else None,
        )
        return await handler(event, data)


class BotSubscribers(BaseMiddleware):
    """Puts ``subscribers``, the subscribers of the bot the update came to, into every
    handler's arguments: what a user does with one bot is recorded for that bot only."""

    def __init__(self, book: SubscriberBook) -> None:
        self._book = book

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        served: ServedBot | None = data.get("served_bot")
        # getMe's id for a Bot; the older form's bot has only its token's.
        bot: Bot = data["bot"]
        data["subscribers"] = self._book.of(served.bot_id if served else bot.id)
        return await handler(event, data)


class SubscriberRefresh(BaseMiddleware):
    """Keeps a known subscriber's name and language current from any private message."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if isinstance(event, Message) and event.chat.type == "private" and event.from_user:
            subscribers: SubscriberStore = data["subscribers"]
            try:
                await subscribers.refresh(profile_of(event.from_user))
            except Exception:
                # A stale profile must not cost the user their answer: the command still runs.
                logger.warning("Could not refresh subscriber %s", event.from_user.id, exc_info=True)
        return await handler(event, data)


class AdminOnly(BaseMiddleware):
    """Runs the admin routers' handlers for the admins of the bot the update came to only
    (``served_bot``: a Bot's spec.admins, or HERALD_BOT_ADMINS for the older form).

    Registered as an inner middleware, it sees only updates a handler of the admin routers
    matched, so it refuses exactly the admin actions; everyone else's other messages pass by
    untouched. The refusal is logged with who and what kind of update, never the content.
    """

    def __init__(self, *, metrics: Metrics | None = None) -> None:
        self._metrics = metrics

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        served: ServedBot = data["served_bot"]
        if user is not None and user.id in served.admins:
            return await handler(event, data)
        if self._metrics is not None:
            self._metrics.refused(event)
        logger.warning(
            "Refused an admin %s from user %s to %s",
            type(event).__name__,
            user.id if user else "unknown",
            served.label,
        )
        refusal = data["texts"]("refused")
        if isinstance(event, Message):
            await event.answer(refusal)
        elif isinstance(event, CallbackQuery):
            await event.answer(refusal, show_alert=True)
        return None
