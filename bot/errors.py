"""How the bot answers an admin when the API server says no: one place for every command and
button below the admin guard (the creation dialog answers in its own message instead)."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import ExceptionTypeFilter
from aiogram.types import ErrorEvent, Message

from herald.bot.callbacks import BroadcastRef
from herald.bot.live import LiveStatus
from herald.bot.rosters import ServedBot
from herald.bot.stores import BroadcastNotFound, StoreError
from herald.bot.translations import Texts

__all__ = ["router"]


async def store_failed(
    event: ErrorEvent, texts: Texts, served_bot: ServedBot, live: LiveStatus
) -> None:
    exc = event.exception
    if isinstance(exc, BroadcastNotFound):
        ref = BroadcastRef(namespace=exc.namespace, name=exc.name)
        answer = texts("not-found", name=ref.label(default_namespace=served_bot.namespace))
    else:
        answer = texts("kubernetes-error", reason=str(exc))
    update = event.update
    if update.message is not None:
        await update.message.answer(answer)
    elif update.callback_query is not None:
        query = update.callback_query
        if isinstance(exc, BroadcastNotFound) and isinstance(query.message, Message):
            # A deleted Broadcast's status message has nothing left to follow.
            live.forget(chat_id=query.message.chat.id, message_id=query.message.message_id)
        await query.answer(answer)


def router() -> Router:
    errors = Router(name="errors")
    errors.errors.register(store_failed, ExceptionTypeFilter(StoreError))
    return errors
