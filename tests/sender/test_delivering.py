"""End to end with real NATS, Postgres and the Telegram emulator: the pipeline as the
operator sets it up, delivered by senders."""

from __future__ import annotations

from typing import Any

import pytest
from nats.js.errors import KeyNotFoundError

from herald.core import subjects
from herald.core.envelopes import BotSpend, SendLimits, decode

BOT_ID = "123456"  # the sender tests' token's bot, as tests/sender/conftest.py has it
Pipeline = Any  # the fixture's class lives in conftest.py


async def test_full_delivery_each_chat_once_within_the_rate(pipeline: Pipeline) -> None:
    chats = range(1001, 1301)
    uid = await pipeline.open(chats, rate=50, paid=True)
    async with pipeline.sender():
        states = await pipeline.wait_done(uid, within=30)
    assert states == {"delivered": 300}
    summary = await pipeline.client.summary()
    assert summary.total == 300
    assert set(summary.per_chat) == set(chats)
    assert summary.duplicates == {}
    assert max(summary.max_per_second.values()) <= 50
    assert summary.too_many_requests == {}
    message_ids = await pipeline.db.fetchval(
        "SELECT count(*) FROM deliveries WHERE message_id IS NOT NULL"
    )
    assert message_ids == 300
    sent = await pipeline.client.messages()
    assert sent[0].payload["text"] == f"Hello <b>User{sent[0].chat_id}</b>"
    assert sent[0].payload["allow_paid_broadcast"] is True


async def test_blocked_deactivated_and_missing_chats(pipeline: Pipeline) -> None:
    await pipeline.client.configure(
        {"blocked": [2001, 2002], "deactivated": [2003], "not_found": [2004]}
    )
    uid = await pipeline.open(range(2001, 2021), rate=50, paid=True)
    async with pipeline.sender():
        states = await pipeline.wait_done(uid, within=20)
    assert states == {"delivered": 16, "blocked": 3, "failed": 1}
    inactive = await pipeline.db.fetch(
        "SELECT chat_id FROM subscribers WHERE NOT is_active ORDER BY chat_id"
    )
    assert [row["chat_id"] for row in inactive] == [2001, 2002, 2003]
    reasons = await pipeline.db.fetch(
        "SELECT chat_id, reason FROM deliveries WHERE state IN ('blocked', 'failed') "
        "ORDER BY chat_id"
    )
    assert [(row["chat_id"], row["reason"]) for row in reasons] == [
        (2001, "Blocked"),
        (2002, "Blocked"),
        (2003, "Deactivated"),
        (2004, "ChatNotFound"),
    ]


async def test_a_block_is_the_business_of_the_bot_blocked(pipeline: Pipeline) -> None:
    # Two bots, one sender, overlapping subscribers: 4001 blocked bot A, which messaged them;
    # bot B never did, so 4001 is B's subscriber still. 4005 answered 403 to both.
    bot_a, bot_b = "710001:bot-a-token", "710002:bot-b-token"
    await pipeline.client.configure({"blocked": [4001, 4005]})
    await pipeline.db.execute("INSERT INTO subscribers (bot_id, chat_id) VALUES ('710002', 4001)")
    of_a = await pipeline.open(range(4001, 4011), rate=50, token=bot_a)
    of_b = await pipeline.open(range(4002, 4011), rate=50, token=bot_b)
    async with pipeline.sender():
        assert await pipeline.wait_done(of_a, within=20) == {"delivered": 8, "blocked": 2}
        assert await pipeline.wait_done(of_b, within=20) == {"delivered": 8, "blocked": 1}
    rows = await pipeline.db.fetch(
        "SELECT bot_id, chat_id FROM subscribers WHERE NOT is_active ORDER BY bot_id, chat_id"
    )
    assert [tuple(row) for row in rows] == [("710001", 4001), ("710001", 4005), ("710002", 4005)]
    assert await pipeline.db.fetchval(
        "SELECT is_active FROM subscribers WHERE bot_id = '710002' AND chat_id = 4001"
    )


async def test_bad_markup_stops_the_broadcast_after_the_first_sends(pipeline: Pipeline) -> None:
    uid = await pipeline.open(
        range(3001, 3201), rate=50, paid=True, content={"text": "<b>unclosed"}
    )
    async with pipeline.sender():

        async def faulted() -> bool:
            return await pipeline.fault(uid) is not None

        await pipeline.wait_for(faulted, within=10, what="a fault record")
        await pipeline.wait_for(
            lambda: _no_claims(pipeline, uid), within=5, what="claims given back"
        )
    fault = await pipeline.fault(uid)
    assert fault is not None
    assert fault.reason == "ContentRejected"
    assert "can't parse entities" in fault.message
    states = await pipeline.states(uid)
    assert states["failed"] == 0
    assert states["pending"] == 200
    assert (await pipeline.client.summary()).errors.get(400, 0) <= 3 + 8


async def _no_claims(pipeline: Pipeline, uid: str) -> bool:
    states = await pipeline.states(uid)
    return bool(states["claimed"] + states["sending"] == 0)


async def test_uncertain_when_the_answer_is_lost(pipeline: Pipeline) -> None:
    await pipeline.client.configure({"faults": {"drop_ratio": 0.2}, "seed": 7})
    uid = await pipeline.open(range(4001, 4101), rate=100, paid=True)
    async with pipeline.sender(request_timeout_seconds=1.0):
        states = await pipeline.wait_done(uid, within=30)
    summary = await pipeline.client.summary()
    assert summary.dropped > 0
    assert states["uncertain"] == summary.dropped
    assert states["delivered"] + states["uncertain"] == 100
    assert summary.duplicates == {}


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param("error_ratio", id="json-5xx"),
        # A proxy's HTML page, which aiogram cannot decode: once a row left claimed for ever.
        pytest.param("bad_gateway_ratio", id="html-502"),
    ],
)
async def test_server_errors_are_retried_with_backoff(pipeline: Pipeline, fault: str) -> None:
    await pipeline.client.configure({"faults": {fault: 0.3}, "seed": 3})
    uid = await pipeline.open(range(5001, 5101), rate=100, paid=True)
    async with pipeline.sender():
        states = await pipeline.wait_done(uid, within=30)
    summary = await pipeline.client.summary()
    # Three attempts each: about 0.3^3 = 2.7% fail for good, the rest get through.
    assert states["delivered"] >= 90
    assert states["delivered"] + states["failed"] == 100
    assert summary.duplicates == {}
    failed = await pipeline.db.fetch("SELECT DISTINCT reason FROM deliveries WHERE state='failed'")
    assert {row["reason"] for row in failed} <= {"ServerError"}


async def test_the_bot_s_daily_stars_budget_holds_all_its_paid_broadcasts(
    pipeline: Pipeline,
) -> None:
    limits = SendLimits(messages_per_second=30, paid_messages_per_second=1000, stars_per_day=2)
    first = await pipeline.open(range(7001, 7016), rate=200, paid=True, limits=limits)
    second = await pipeline.open(range(7101, 7116), rate=200, paid=True, limits=limits)
    async with pipeline.sender():

        async def both_held() -> bool:
            return None not in (await pipeline.fault(first), await pipeline.fault(second))

        await pipeline.wait_for(both_held, within=10, what="two fault records")

        async def kept() -> bool:
            try:
                entry = await pipeline.kv.get(subjects.bot_spend_key(BOT_ID))
            except KeyNotFoundError:
                return False
            return entry.value is not None and decode(BotSpend, entry.value).paid == 20

        await pipeline.wait_for(kept, within=5, what="the day's paid count kept")
    for uid in (first, second):
        fault = await pipeline.fault(uid)
        assert fault is not None and fault.reason == "DailyBudgetExhausted"
    # Two Stars pay for 20 paid messages a day, over both broadcasts of the bot.
    assert (await pipeline.client.summary()).total == 20
    delivered = [(await pipeline.states(uid)).get("delivered", 0) for uid in (first, second)]
    assert sum(delivered) == 20


async def test_a_stars_budget_stops_paid_sending_before_it_is_exceeded(
    pipeline: Pipeline,
) -> None:
    uid = await pipeline.open(range(6001, 6101), rate=200, paid=True, stars_budget=3)
    async with pipeline.sender():

        async def faulted() -> bool:
            return await pipeline.fault(uid) is not None

        await pipeline.wait_for(faulted, within=10, what="a fault record")
    fault = await pipeline.fault(uid)
    assert fault is not None and fault.reason == "BudgetExhausted"
    assert (await pipeline.client.summary()).total == 30
    assert (await pipeline.states(uid))["delivered"] == 30
