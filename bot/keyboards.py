"""The views' keyboards as Telegram inline markup: the one place that builds markup."""

from __future__ import annotations

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from herald.bot.views import Keyboard

__all__ = ["markup"]


def markup(keyboard: Keyboard) -> InlineKeyboardMarkup | None:
    """Inline markup for ``keyboard``; ``None`` for no buttons, which removes a keyboard."""
    if not keyboard:
        return None
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=button.text, callback_data=button.data) for button in row]
            for row in keyboard
        ]
    )
