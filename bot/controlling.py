"""Admin control of one Broadcast: /status, /pause, /resume, /cancel and their buttons.

What the API server refuses (no such Broadcast, no permission) is answered in one place,
:mod:`herald.bot.errors`."""

from __future__ import annotations

import logging

from aiogram import F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message

from herald.bot.callbacks import (
    BroadcastAction,
    BroadcastButton,
    BroadcastRef,
    parse_broadcast_button,
)
from herald.bot.keyboards import markup
from herald.bot.live import LiveStatus
from herald.bot.rosters import ServedBot
from herald.bot.stores import BroadcastStore
from herald.bot.translations import Texts
from herald.bot.views import cancel_keyboard

__all__ = ["router", "show_status"]

logger = logging.getLogger(__name__)


async def show_status(
    message: Message,
    ref: BroadcastRef,
    *,
    broadcasts: BroadcastStore,
    live: LiveStatus,
    texts: Texts,
    headline: str | None = None,
) -> None:
    """Answer with the Broadcast's status message (after ``headline``, when given: one
    message rather than two, which Telegram's per-chat limit would space out) and keep that
    message current."""
    broadcast = await broadcasts.get(ref)
    rendered = live.render(broadcast, texts)
    text = f"{headline}\n\n{rendered.text}" if headline else rendered.text
    sent = await message.answer(text, reply_markup=rendered.markup)
    live.track(
        chat_id=sent.chat.id,
        message_id=sent.message_id,
        broadcast=broadcast,
        texts=texts,
        text=rendered.text,
    )


def _label(ref: BroadcastRef, served: ServedBot) -> str:
    return ref.label(default_namespace=served.namespace)


async def _ref(
    message: Message, command: CommandObject, *, texts: Texts, served: ServedBot
) -> BroadcastRef | None:
    """The Broadcast the command names, or ``None`` after telling the admin how to name it."""
    if not command.args:
        await message.answer(texts("usage", command=command.command))
        return None
    ref = BroadcastRef.parse(command.args, default_namespace=served.namespace)
    if ref is None:
        await message.answer(texts("bad-name", text=command.args.strip()[:64]))
    return ref


async def status(
    message: Message,
    command: CommandObject,
    *,
    broadcasts: BroadcastStore,
    live: LiveStatus,
    texts: Texts,
    served_bot: ServedBot,
) -> None:
    ref = await _ref(message, command, texts=texts, served=served_bot)
    if ref is None:
        return
    await show_status(message, ref, broadcasts=broadcasts, live=live, texts=texts)


async def set_paused(
    message: Message,
    command: CommandObject,
    *,
    broadcasts: BroadcastStore,
    live: LiveStatus,
    texts: Texts,
    served_bot: ServedBot,
) -> None:
    """/pause and /resume: which one is the command's name."""
    paused = command.command == "pause"
    ref = await _ref(message, command, texts=texts, served=served_bot)
    if ref is None:
        return
    await broadcasts.set_paused(ref, paused=paused)
    logger.info(
        "Admin %s set paused=%s on %s/%s",
        message.from_user.id if message.from_user else "?",
        paused,
        ref.namespace,
        ref.name,
    )
    await show_status(
        message,
        ref,
        broadcasts=broadcasts,
        live=live,
        texts=texts,
        headline=texts("paused" if paused else "resumed", name=_label(ref, served_bot)),
    )


async def cancel(
    message: Message,
    command: CommandObject,
    *,
    broadcasts: BroadcastStore,
    texts: Texts,
    served_bot: ServedBot,
) -> None:
    ref = await _ref(message, command, texts=texts, served=served_bot)
    if ref is None:
        return
    await broadcasts.get(ref)  # a Broadcast that is not there is said so, not offered
    keyboard = cancel_keyboard(ref, texts=texts, default_namespace=served_bot.namespace)
    await message.answer(
        texts("cancel-ask", name=_label(ref, served_bot)), reply_markup=markup(keyboard)
    )


async def button(
    query: CallbackQuery,
    broadcasts: BroadcastStore,
    live: LiveStatus,
    texts: Texts,
    served_bot: ServedBot,
) -> None:
    parsed = parse_broadcast_button(query.data or "", default_namespace=served_bot.namespace)
    if parsed is None or not isinstance(query.message, Message):
        await query.answer(texts("dialog-expired"))
        return
    answer = await _act(
        parsed,
        query.message,
        broadcasts=broadcasts,
        live=live,
        texts=texts,
        served=served_bot,
    )
    await query.answer(answer)


def router() -> Router:
    controlling = Router(name="controlling")
    controlling.message.register(status, Command("status"))
    controlling.message.register(set_paused, Command("pause", "resume"))
    controlling.message.register(cancel, Command("cancel"))
    controlling.callback_query.register(button, F.data.startswith("b:"))
    return controlling


async def _act(
    button: BroadcastButton,
    message: Message,
    *,
    broadcasts: BroadcastStore,
    live: LiveStatus,
    texts: Texts,
    served: ServedBot,
) -> str | None:
    """Carry out one button press on ``message``; returns the callback answer."""
    ref, name = button.ref, _label(button.ref, served)
    if button.action is BroadcastAction.CANCEL:
        keyboard = cancel_keyboard(ref, texts=texts, default_namespace=served.namespace)
        await message.answer(texts("cancel-ask", name=name), reply_markup=markup(keyboard))
        return None
    if button.action is BroadcastAction.CANCEL_CONFIRM:
        await broadcasts.delete(ref)
        logger.info("Deleted %s/%s at an admin's request", ref.namespace, ref.name)
        await message.edit_text(texts("cancelled", name=name), reply_markup=None)
        return texts("cancelled", name=name)
    if button.action is BroadcastAction.CANCEL_ABORT:
        await message.edit_text(texts("cancel-kept", name=name), reply_markup=None)
        return None
    if button.action in (BroadcastAction.PAUSE, BroadcastAction.RESUME):
        paused = button.action is BroadcastAction.PAUSE
        broadcast = await broadcasts.set_paused(ref, paused=paused)
        answer: str | None = texts("paused" if paused else "resumed", name=name)
    else:
        broadcast = await broadcasts.get(ref)
        answer = None
    rendered = live.render(broadcast, texts)
    try:
        await message.edit_text(rendered.text, reply_markup=rendered.markup)
    except TelegramBadRequest as exc:
        if "not modified" not in str(exc):
            raise
        answer = answer or texts("up-to-date")
    live.track(
        chat_id=message.chat.id,
        message_id=message.message_id,
        broadcast=broadcast,
        texts=texts,
        text=rendered.text,
    )
    return answer
