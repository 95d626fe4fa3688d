"""A Broadcast from a forwarded post: audience, rate, confirm, create.

The dialog's state lives in aiogram's FSM storage, keyed by the admin's chat; its buttons
carry one choice each, and a button pressed out of turn (an old dialog) is answered as
expired instead of being applied to the current one.
"""

from __future__ import annotations

import logging

from aiogram import F, Router
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message

from herald.bot.callbacks import (
    AUDIENCE_ALL,
    DialogButton,
    DialogStep,
    parse_dialog_button,
)
from herald.bot.keyboards import markup
from herald.bot.live import LiveStatus
from herald.bot.manifests import RATE_CHOICES, ForwardedPost, broadcast_name, new_broadcast
from herald.bot.rosters import ServedBot
from herald.bot.stores import BroadcastExists, BroadcastStore, StoreError, SubscriberStore
from herald.bot.translations import Texts
from herald.bot.views import ButtonView, Keyboard
from herald.core.broadcasts import DEFAULT_MESSAGES_PER_SECOND

__all__ = ["Creating", "router"]

logger = logging.getLogger(__name__)

# Buttons for the most common languages; the rest of the audience is reached with Everyone.
_LANGUAGE_CHOICES = 6


class Creating(StatesGroup):
    audience = State()
    rate = State()
    confirm = State()


def _button(texts: Texts, key: str, step: DialogStep, value: str, **args: str) -> ButtonView:
    return ButtonView(text=texts(key, **args), data=DialogButton(step=step, value=value).pack())


async def _audience_keyboard(texts: Texts, subscribers: SubscriberStore) -> Keyboard:
    everyone = _button(
        texts,
        "audience-all",
        DialogStep.AUDIENCE,
        AUDIENCE_ALL,
        count=str(await subscribers.count_active()),
    )
    languages = [
        _button(
            texts,
            "audience-language",
            DialogStep.AUDIENCE,
            language.language_code,
            language=language.language_code,
            count=str(language.subscribers),
        )
        for language in await subscribers.active_languages(limit=_LANGUAGE_CHOICES)
    ]
    return ((everyone,), *(tuple(languages[i : i + 2]) for i in range(0, len(languages), 2)))


def _rate_keyboard(texts: Texts) -> Keyboard:
    return (
        tuple(
            _button(
                texts,
                "rate-choice",
                DialogStep.RATE,
                str(rate),
                rate=str(rate) + (" ✓" if rate == DEFAULT_MESSAGES_PER_SECOND else ""),
            )
            for rate in RATE_CHOICES
        ),
    )


def _confirm_keyboard(texts: Texts) -> Keyboard:
    return (
        (
            _button(texts, "button-create", DialogStep.CONFIRM, "yes"),
            _button(texts, "button-discard", DialogStep.CONFIRM, "no"),
        ),
    )


async def forwarded(
    message: Message, state: FSMContext, subscribers: SubscriberStore, texts: Texts
) -> None:
    # A new forward starts over: the last post forwarded is the one to send.
    assert message.from_user is not None  # F.chat.type == "private" implies a sender
    post = ForwardedPost(
        chat_id=message.chat.id, message_id=message.message_id, admin_id=message.from_user.id
    )
    await state.set_state(Creating.audience)
    await state.set_data({"chat_id": post.chat_id, "message_id": post.message_id})
    await message.reply(
        texts("create-audience"),
        reply_markup=markup(await _audience_keyboard(texts, subscribers)),
    )


async def audience(query: CallbackQuery, state: FSMContext, texts: Texts) -> None:
    choice = parse_dialog_button(query.data or "")
    if choice is None or not isinstance(query.message, Message):
        await query.answer(texts("dialog-expired"))
        return
    await state.update_data(audience=choice.value)
    await state.set_state(Creating.rate)
    await query.message.edit_text(texts("create-rate"), reply_markup=markup(_rate_keyboard(texts)))
    await query.answer()


async def rate(query: CallbackQuery, state: FSMContext, texts: Texts) -> None:
    choice = parse_dialog_button(query.data or "")
    if choice is None or choice.rate is None or not isinstance(query.message, Message):
        await query.answer(texts("dialog-expired"))
        return
    data = await state.update_data(rate=choice.rate)
    await state.set_state(Creating.confirm)
    who = (
        texts("audience-everyone")
        if data["audience"] == AUDIENCE_ALL
        else texts("audience-only", language=data["audience"])
    )
    await query.message.edit_text(
        texts("create-confirm", audience=who, rate=str(choice.rate)),
        reply_markup=markup(_confirm_keyboard(texts)),
    )
    await query.answer()


async def confirm(
    query: CallbackQuery,
    *,
    state: FSMContext,
    broadcasts: BroadcastStore,
    live: LiveStatus,
    texts: Texts,
    served_bot: ServedBot,
) -> None:
    choice = parse_dialog_button(query.data or "")
    if choice is None or not isinstance(query.message, Message):
        await query.answer(texts("dialog-expired"))
        return
    data = await state.get_data()
    await state.clear()
    if not choice.confirmed:
        await query.message.edit_text(texts("discarded"), reply_markup=None)
        await query.answer()
        return
    post = ForwardedPost(
        chat_id=int(data["chat_id"]),
        message_id=int(data["message_id"]),
        admin_id=query.from_user.id,
    )
    broadcast = new_broadcast(
        post,
        namespace=served_bot.namespace,
        bot_ref=served_bot.bot_ref,
        audience=str(data["audience"]),
        messages_per_second=int(data["rate"]),
    )
    name = broadcast_name(post)
    try:
        created = await broadcasts.create(broadcast)
    except BroadcastExists:
        await query.message.edit_text(texts("already-exists", name=name), reply_markup=None)
        await query.answer()
        return
    except StoreError as exc:
        await query.message.edit_text(texts("kubernetes-error", reason=str(exc)), reply_markup=None)
        await query.answer()
        return
    logger.info("Admin %s created Broadcast %s/%s", post.admin_id, served_bot.namespace, name)
    await query.message.edit_text(texts("created", name=name), reply_markup=None)
    await query.answer()
    rendered = live.render(created, texts)
    sent = await query.message.answer(rendered.text, reply_markup=rendered.markup)
    live.track(
        chat_id=sent.chat.id,
        message_id=sent.message_id,
        broadcast=created,
        texts=texts,
        text=rendered.text,
    )


async def out_of_turn(query: CallbackQuery, texts: Texts) -> None:
    await query.answer(texts("dialog-expired"))


def router() -> Router:
    creating = Router(name="creating")
    creating.message.filter(F.chat.type == "private")
    creating.message.register(forwarded, F.forward_origin)
    creating.callback_query.register(audience, Creating.audience, F.data.startswith("n:a:"))
    creating.callback_query.register(rate, Creating.rate, F.data.startswith("n:r:"))
    creating.callback_query.register(confirm, Creating.confirm, F.data.startswith("n:c:"))
    creating.callback_query.register(out_of_turn, F.data.startswith("n:"))
    return creating
