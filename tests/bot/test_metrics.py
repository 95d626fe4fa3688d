"""The bot's counters: updates, admin commands and refusals, subscriber changes, reports."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import nats
import pytest
from aiogram.types import CallbackQuery, Chat, Message, MessageOriginChannel, User

from herald.bot.metrics import command_of
from herald.core import subjects
from herald.core.envelopes import CompletionRecord, encode

Harness = Any  # the fixture's class lives in conftest.py

_USER = User(id=1, is_bot=False, first_name="A")
_CHAT = Chat(id=1, type="private")
_WHEN = datetime(2026, 12, 1, tzinfo=UTC)


def _message(text: str | None = None, *, forwarded: bool = False) -> Message:
    origin = None
    if forwarded:
        channel = Chat(id=-100, type="channel", title="News")
        origin = MessageOriginChannel(date=_WHEN, chat=channel, message_id=5)
    return Message(
        message_id=1, date=_WHEN, chat=_CHAT, from_user=_USER, text=text, forward_origin=origin
    )


def _button(data: str) -> CallbackQuery:
    return CallbackQuery(id="q", from_user=_USER, chat_instance="c", data=data)


@pytest.mark.parametrize(
    ("event", "command"),
    [
        (_message("/pause sale"), "pause"),
        (_message("/Status@herald_bot sale"), "status"),
        (_message("/broadcasts"), "broadcasts"),
        (_message("/rm -rf"), "other"),
        (_message("/"), "other"),
        (_message("hello"), "other"),
        (_message("Sale!", forwarded=True), "create"),
        (_button("b:p:sale"), "pause"),
        (_button("b:y:ns/sale"), "cancel"),
        (_button("b:z:sale"), "other"),
        (_button("n:a:all"), "create"),
        (_button("x"), "other"),
    ],
    ids=[
        "command",
        "command-at-bot",
        "no-argument",
        "unknown-command",
        "bare-slash",
        "text",
        "forward",
        "pause-button",
        "cancel-confirm",
        "unknown-button",
        "dialog-button",
        "foreign-data",
    ],
)
def test_command_label_is_from_a_fixed_set(event: Message | CallbackQuery, command: str) -> None:
    assert command_of(event) == command


async def test_updates_commands_refusals_and_reports_are_counted(
    herald_bot: Harness, nats_url: str
) -> None:
    h = herald_bot
    registry = h.app.metrics.registry

    def count(name: str, **labels: str) -> float:
        return registry.get_sample_value(name, labels) or 0.0

    async def until(name: str, expected: float, **labels: str) -> None:
        """Handlers run as tasks: their counters move just after their answers are sent."""
        for _ in range(200):
            if count(name, **labels) >= expected:
                break
            await asyncio.sleep(0.05)
        assert count(name, **labels) == expected, (name, labels)

    await h.send(h.USER, "/start")
    await h.reply(h.USER["id"], "Uma")
    await h.send(h.USER, "/pause sale")
    await h.reply(h.USER["id"], "only Herald admins")
    await h.send(h.ADMIN, "/broadcasts")
    await h.reply(h.ADMIN["id"], "No broadcasts yet")
    await h.chat_member(h.USER, "member", "kicked")

    record = CompletionRecord(
        uid="6b1d0c4e-0000-4000-8000-00000000000a",
        namespace=h.namespace,
        name="sale",
        outcome="Complete",
        total=1,
        delivered=1,
        blocked=0,
        failed=0,
        uncertain=0,
        started_at=_WHEN,
        completed_at=_WHEN,
    )
    connection = await nats.connect(nats_url)
    try:
        await connection.jetstream().publish(subjects.COMPLETIONS_SUBJECT, encode(record))
    finally:
        await connection.close()

    await until("herald_bot_reports_total", 2, result="sent")  # one per admin
    await until("herald_bot_subscriber_changes_total", 1, change="blocked")
    await until("herald_bot_admin_commands_total", 1, command="broadcasts", result="ok")
    assert count("herald_bot_updates_total", kind="message") == 3
    assert count("herald_bot_updates_total", kind="my_chat_member") == 1
    assert count("herald_bot_subscriber_changes_total", change="subscribed") == 1
    assert count("herald_bot_refusals_total", kind="message") == 1
    assert count("herald_bot_admin_commands_total", command="pause", result="refused") == 1
    assert count("herald_bot_admin_commands_total", command="pause", result="ok") == 0
    assert count("herald_bot_reports_total", result="failed") == 0
