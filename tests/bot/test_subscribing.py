"""Subscribers enter through /start and leave by blocking the bot."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

Harness = Any  # the fixture's class lives in conftest.py


async def test_start_stores_the_subscriber_with_language(herald_bot: Harness) -> None:
    await herald_bot.send(herald_bot.USER, "/start")

    await herald_bot.reply(herald_bot.USER["id"], "Uma")
    row = await herald_bot.fetchrow(
        "SELECT * FROM subscribers WHERE chat_id = $1", herald_bot.USER["id"]
    )
    assert row is not None
    assert row["bot_id"] == herald_bot.BOT_ID
    assert row["language_code"] == "de"
    assert row["username"] == "uma"
    assert row["first_name"] == "Uma"
    assert row["is_active"] is True


async def test_blocking_makes_the_subscriber_inactive_and_unblocking_active(
    herald_bot: Harness,
) -> None:
    await herald_bot.send(herald_bot.USER, "/start")
    await herald_bot.reply(herald_bot.USER["id"], "Uma")

    await herald_bot.chat_member(herald_bot.USER, "member", "kicked")
    await _wait_active(herald_bot, herald_bot.USER["id"], expected=False)

    await herald_bot.chat_member(herald_bot.USER, "kicked", "member")
    await _wait_active(herald_bot, herald_bot.USER["id"], expected=True)


async def test_any_private_message_refreshes_a_known_subscriber(herald_bot: Harness) -> None:
    await herald_bot.send(herald_bot.USER, "/start")
    await herald_bot.reply(herald_bot.USER["id"], "Uma")

    renamed = herald_bot.USER | {"first_name": "Umaira", "language_code": "ru"}
    await herald_bot.send(renamed, "hello")

    await _wait_for_row(
        herald_bot,
        herald_bot.USER["id"],
        lambda row: row["first_name"] == "Umaira" and row["language_code"] == "ru",
    )


async def test_a_user_of_two_bots_is_two_subscribers(herald_bot: Harness) -> None:
    h = herald_bot
    user = h.USER["id"]
    # The user blocked the other bot, which knew them in Russian.
    await h.execute(
        "INSERT INTO subscribers (bot_id, chat_id, first_name, language_code, is_active) "
        "VALUES ($1, $2, 'Uma', 'ru', false)",
        h.OTHER_BOT_ID,
        user,
    )
    await h.send(h.USER, "/start")
    await h.reply(user, "Uma")
    ours = await h.fetchrow(
        "SELECT * FROM subscribers WHERE bot_id = $1 AND chat_id = $2", h.BOT_ID, user
    )
    assert ours is not None
    assert (ours["language_code"], ours["is_active"]) == ("de", True)

    await h.chat_member(h.USER, "member", "kicked")
    await _wait_active(h, user, expected=False)
    # Neither the /start nor the block of this bot touched the other bot's row.
    theirs = await h.fetchrow(
        "SELECT * FROM subscribers WHERE bot_id = $1 AND chat_id = $2", h.OTHER_BOT_ID, user
    )
    assert theirs is not None
    assert (theirs["language_code"], theirs["is_active"]) == ("ru", False)
    assert theirs["updated_at"] == theirs["created_at"]


async def _wait_active(herald_bot: Harness, chat_id: int, *, expected: bool) -> None:
    await _wait_for_row(herald_bot, chat_id, lambda row: row["is_active"] is expected)


async def _wait_for_row(herald_bot: Harness, chat_id: int, check: Callable[[Any], bool]) -> None:
    deadline = time.monotonic() + 10
    row = None
    while time.monotonic() < deadline:
        row = await herald_bot.fetchrow(
            "SELECT * FROM subscribers WHERE bot_id = $1 AND chat_id = $2",
            herald_bot.BOT_ID,
            chat_id,
        )
        if row is not None and check(row):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"subscriber {chat_id} never matched; last row {dict(row or {})}")
