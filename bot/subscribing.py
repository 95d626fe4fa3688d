"""How users become subscribers, and stop being ones: /start and the bot's membership."""

from __future__ import annotations

import logging

from aiogram import F, Router
from aiogram.filters import KICKED, LEFT, MEMBER, ChatMemberUpdatedFilter, CommandStart
from aiogram.types import ChatMemberUpdated, Message

from herald.bot.metrics import Metrics
from herald.bot.middlewares import profile_of
from herald.bot.stores import SubscriberStore
from herald.bot.translations import Texts

__all__ = ["router"]

logger = logging.getLogger(__name__)


def router() -> Router:
    """A fresh router: a router joins one dispatcher only, and tests build several."""
    subscribing = Router(name="subscribing")
    subscribing.message.filter(F.chat.type == "private")
    subscribing.my_chat_member.filter(F.chat.type == "private")

    @subscribing.message(CommandStart())
    async def start(
        message: Message, subscribers: SubscriberStore, texts: Texts, metrics: Metrics
    ) -> None:
        user = message.from_user
        if user is None:
            return
        await subscribers.subscribe(profile_of(user))
        metrics.subscriber_changes.labels("subscribed").inc()
        logger.info("Subscriber %s started the bot", user.id)
        await message.answer(texts("welcome", name=user.first_name))

    @subscribing.my_chat_member(ChatMemberUpdatedFilter(member_status_changed=KICKED | LEFT))
    async def blocked(
        update: ChatMemberUpdated, subscribers: SubscriberStore, metrics: Metrics
    ) -> None:
        # Telegram's private-chat "kicked" is the user blocking the bot: never message them
        # again until they come back.
        await subscribers.set_active(profile_of(update.from_user), active=False)
        metrics.subscriber_changes.labels("blocked").inc()
        logger.info("Subscriber %s blocked the bot", update.from_user.id)

    @subscribing.my_chat_member(ChatMemberUpdatedFilter(member_status_changed=MEMBER))
    async def unblocked(
        update: ChatMemberUpdated, subscribers: SubscriberStore, metrics: Metrics
    ) -> None:
        await subscribers.set_active(profile_of(update.from_user), active=True)
        metrics.subscriber_changes.labels("unblocked").inc()
        logger.info("Subscriber %s unblocked the bot", update.from_user.id)

    return subscribing
