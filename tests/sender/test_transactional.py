"""Transactional messages end to end with real NATS, Postgres and the Telegram emulator.

The tests play herald-api's part (``Pipeline.message``: the ``messages`` row, the
MessageWork on ``herald.messages.<bot id>`` under the message's id, the bot's BotTraffic) and
the operator's (``Pipeline.bot``: the BotRecord and the durable consumer ``messages-<bot
id>``), as those components do it.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import nats.js.errors
import pytest

from herald.core import subjects

Pipeline = Any  # the fixture's class lives in conftest.py
TOKEN = "123456:sender-test-token"  # the sender tests' token, as tests/sender/conftest.py has it


async def test_a_message_is_delivered_by_a_sender_with_no_broadcast(pipeline: Pipeline) -> None:
    bot = await pipeline.bot()
    async with pipeline.outcomes() as heard, pipeline.sender() as sender:
        message_id = await pipeline.message(
            4242, text="Order <b>42</b> has shipped", callback_url="http://127.0.0.1:9/cb", bot=bot
        )
        row = await pipeline.wait_message_final(message_id, within=15)

        async def announced() -> bool:
            return bool(heard)

        await pipeline.wait_for(announced, within=5, what="the outcome announced")
        assert await pipeline.queued_messages() == 0
        delivered = sender.metrics.registry.get_sample_value(
            "herald_sender_transactional_messages_total", {"outcome": "delivered"}
        )
    [sent] = await pipeline.client.messages()
    assert (sent.chat_id, sent.payload["text"]) == (4242, "Order <b>42</b> has shipped")
    assert "allow_paid_broadcast" not in sent.payload
    assert row["state"] == "delivered"
    assert row["reason"] is None
    assert row["telegram_message_id"] == sent.message_id
    assert row["sent_at"] is not None
    assert row["callback_state"] == "pending"
    assert row["callback_next_at"] is not None
    assert [(o.id, o.state) for o in heard] == [(message_id, "delivered")]
    assert delivered == 1


async def test_messages_go_ahead_of_a_broadcast_at_the_bots_full_rate(
    pipeline: Pipeline,
) -> None:
    bot = await pipeline.bot()
    uid = await pipeline.open(range(1, 241), rate=30)
    async with pipeline.sender():

        async def underway() -> bool:
            return bool((await pipeline.states(uid))["delivered"] >= 60)

        await pipeline.wait_for(underway, within=15, what="the broadcast under way")
        ids = [await pipeline.message(90_000 + n, bot=bot) for n in range(20)]
        rows = [await pipeline.wait_message_final(each, within=15) for each in ids]
        states = await pipeline.wait_done(uid, within=30)
    assert states == {"delivered": 240}
    assert {row["state"] for row in rows} == {"delivered"}
    summary = await pipeline.client.summary()
    assert summary.total == 260
    assert max(summary.max_per_second.values()) <= 30
    assert summary.too_many_requests == {}
    assert summary.duplicates == {}
    # Ahead: from the first transactional message to the last, the bot sent (almost) only
    # them; a broadcast send granted just before a message arrived may land in between.
    order = [m.chat_id for m in sorted(await pipeline.client.messages(), key=lambda m: m.monotonic)]
    first = next(i for i, chat in enumerate(order) if chat >= 90_000)
    last = max(i for i, chat in enumerate(order) if chat >= 90_000)
    between = [chat for chat in order[first : last + 1] if chat < 90_000]
    assert len(between) <= 2, between


async def test_one_message_per_second_per_chat_across_messages_and_broadcasts(
    pipeline: Pipeline,
) -> None:
    bot = await pipeline.bot()
    uid = await pipeline.open(range(1, 61), rate=30)
    async with pipeline.sender():
        # Chats the broadcast reaches within its first second, three messages to one.
        ids = [await pipeline.message(chat, bot=bot) for chat in (20, 20, 21, 20)]
        rows = [await pipeline.wait_message_final(each, within=15) for each in ids]
        assert await pipeline.wait_done(uid, within=20) == {"delivered": 60}
    assert {row["state"] for row in rows} == {"delivered"}
    summary = await pipeline.client.summary()
    assert summary.too_many_requests == {}
    assert (summary.per_chat[20], summary.per_chat[21]) == (4, 2)
    per_chat: dict[int, list[float]] = {}
    for message in await pipeline.client.messages():
        per_chat.setdefault(message.chat_id, []).append(message.monotonic)
    for times in per_chat.values():
        assert all(b - a >= 1.0 for a, b in itertools.pairwise(sorted(times)))


async def test_a_message_past_its_deadline_fails_and_is_never_sent(pipeline: Pipeline) -> None:
    bot = await pipeline.bot()
    past = datetime.now(UTC) - timedelta(seconds=1)
    future = datetime.now(UTC) + timedelta(hours=1)
    async with pipeline.outcomes() as heard, pipeline.sender():
        late = await pipeline.message(
            5001, deadline=past, callback_url="http://127.0.0.1:9/cb", bot=bot
        )
        in_time = await pipeline.message(5002, deadline=future, bot=bot)
        late_row = await pipeline.wait_message_final(late, within=15)
        in_time_row = await pipeline.wait_message_final(in_time, within=15)

        async def both_announced() -> bool:
            return len(heard) == 2

        await pipeline.wait_for(both_announced, within=5, what="two outcomes")
    assert (late_row["state"], late_row["reason"]) == ("failed", "DeadlineExceeded")
    assert late_row["telegram_message_id"] is None
    assert late_row["callback_state"] == "pending"
    assert in_time_row["state"] == "delivered"
    assert [m.chat_id for m in await pipeline.client.messages()] == [5002]
    assert {(o.id, o.state) for o in heard} == {(late, "failed"), (in_time, "delivered")}


async def test_a_403_blocks_the_message_and_deactivates_the_subscriber_of_that_bot(
    pipeline: Pipeline,
) -> None:
    await pipeline.client.configure({"blocked_by": {TOKEN: [6001]}})
    await pipeline.db.execute(
        "INSERT INTO subscribers (bot_id, chat_id) VALUES ('123456', 6001), ('777777', 6001)"
    )
    bot = await pipeline.bot()
    async with pipeline.outcomes() as heard, pipeline.sender():
        message_id = await pipeline.message(6001, bot=bot)
        row = await pipeline.wait_message_final(message_id, within=15)

        async def announced() -> bool:
            return bool(heard)

        await pipeline.wait_for(announced, within=5, what="the outcome announced")
    assert (row["state"], row["reason"]) == ("blocked", "Blocked")
    assert [(o.id, o.state) for o in heard] == [(message_id, "blocked")]
    active = await pipeline.db.fetch(
        "SELECT bot_id, is_active FROM subscribers WHERE chat_id = 6001 ORDER BY bot_id"
    )
    assert [tuple(r) for r in active] == [("123456", False), ("777777", True)]


async def test_a_bot_is_held_while_its_traffic_is_recent_and_its_record_opens(
    pipeline: Pipeline,
) -> None:
    bot = await pipeline.bot()
    await pipeline.traffic(bot, ago=3600)  # an hour ago: past the window
    async with pipeline.sender() as sender:
        message_id = await pipeline.message(7001, bot=bot, traffic=False)
        await sender.ready.wait()
        await asyncio.sleep(2)  # several lease rounds
        with pytest.raises(nats.js.errors.KeyNotFoundError):
            await pipeline.kv.get(subjects.bot_lease_key(bot.bot_id))
        assert (await pipeline.message_row(message_id))["state"] == "pending"
        await pipeline.traffic(bot)
        row = await pipeline.wait_message_final(message_id, within=15)
        assert row["state"] == "delivered"
        # The Bot withdrawn: nothing to hold the bot for any more, the lease is given up.
        await pipeline.kv.purge(bot.key)

        async def released() -> bool:
            try:
                await pipeline.kv.get(subjects.bot_lease_key(bot.bot_id))
            except nats.js.errors.KeyNotFoundError:
                return True
            return False

        await pipeline.wait_for(released, within=10, what="the lease given up")
