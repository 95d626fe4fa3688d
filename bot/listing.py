"""/broadcasts: every Broadcast of the bot, with its phase and progress; /help."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message

from herald.bot.rosters import ServedBot
from herald.bot.stores import BroadcastStore
from herald.bot.translations import Texts
from herald.bot.views import list_text

__all__ = ["router"]


def router() -> Router:
    listing = Router(name="listing")

    @listing.message(Command("broadcasts"))
    async def broadcasts_list(
        message: Message, broadcasts: BroadcastStore, texts: Texts, served_bot: ServedBot
    ) -> None:
        found = await broadcasts.list(served_bot.namespaces)
        await message.answer(list_text(found, texts=texts, default_namespace=served_bot.namespace))

    @listing.message(Command("help"))
    async def help_(message: Message, texts: Texts) -> None:
        await message.answer(texts("admin-help"))

    return listing
