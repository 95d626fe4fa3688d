"""Presses of a broadcast's callback buttons: answered, counted once per chat, tagged.

Every press is answered (answerCallbackQuery), or the user's client shows a spinner until it
gives up: with the button's ``answer`` when the Broadcast still has the button, silently when
it is gone. The click and the tag are recorded together, once per (broadcast, chat, button),
so pressing again counts nothing twice.
"""

from __future__ import annotations

import logging

from aiogram import F, Router
from aiogram.types import CallbackQuery

from herald.bot.metrics import Metrics
from herald.bot.stores import BroadcastStore, StoreError, SubscriberStore
from herald.core.contents import callback_buttons
from herald.telegram.rendering import Press, parse_callback_data

__all__ = ["router"]

logger = logging.getLogger(__name__)


def router() -> Router:
    """A fresh router: a router joins one dispatcher only, and tests build several."""
    clicking = Router(name="clicking")

    @clicking.callback_query(F.data.func(parse_callback_data).as_("press"))
    async def pressed(
        query: CallbackQuery,
        press: Press,
        subscribers: SubscriberStore,
        broadcasts: BroadcastStore,
        metrics: Metrics,
    ) -> None:
        answer: str | None = None
        result = "gone"
        try:
            ref = await subscribers.broadcast_of(press.broadcast_uid)
            broadcast = await broadcasts.get(ref) if ref is not None else None
        except StoreError:
            # Deleted (or never this bot's): the press is answered, and nothing is counted.
            broadcast = None
        button = None
        if broadcast is not None and broadcast.metadata.uid == press.broadcast_uid:
            button = callback_buttons(broadcast.spec.content).get(press.callback)
        if button is not None:
            new = await subscribers.record_click(
                broadcast_uid=press.broadcast_uid,
                chat_id=query.from_user.id,
                callback=press.callback,
                tag=button.tag,
            )
            answer = button.answer
            result = "counted" if new else "repeated"
        metrics.clicks.labels(result).inc()
        logger.info("Press of %s on broadcast %s: %s", press.callback, press.broadcast_uid, result)
        await query.answer(answer)

    return clicking
