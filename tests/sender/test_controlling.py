"""Pause, resume, sharing a bot, 429 halts and bad work, against real NATS, Postgres and the
Telegram emulator."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from herald.core import subjects
from herald.core.envelopes import BroadcastState, Recipient, WorkBatch, encode
from herald.sender.batches import BadWork, parse

Pipeline = Any  # the fixture's class lives in conftest.py


async def test_pause_stops_within_a_second_and_resume_completes(pipeline: Pipeline) -> None:
    uid = await pipeline.open(range(1, 121), rate=20)
    async with pipeline.sender():

        async def some_delivered() -> bool:
            return bool((await pipeline.states(uid))["delivered"] >= 30)

        await pipeline.wait_for(some_delivered, within=15, what="30 deliveries")
        await pipeline.set_state(uid, BroadcastState.PAUSED)
        paused_at = datetime.now(UTC)
        await asyncio.sleep(3)
        late = [
            message
            for message in await pipeline.client.messages()
            if message.wall > paused_at + timedelta(seconds=1)
        ]
        assert late == []
        while_paused = await pipeline.states(uid)
        assert while_paused["claimed"] + while_paused["sending"] == 0
        assert while_paused["pending"] > 0
        resumed_at = datetime.now(UTC)
        await pipeline.set_state(uid, BroadcastState.ACTIVE)
        states = await pipeline.wait_done(uid, within=20)
    assert states == {"delivered": 120}
    summary = await pipeline.client.summary()
    assert summary.duplicates == {}
    assert summary.total == 120
    after = sorted(m.monotonic for m in await pipeline.client.messages() if m.wall > resumed_at)
    # No catch-up burst: the resumed part keeps the rate.
    assert after
    assert sum(1 for t in after if t < after[0] + 1.0) <= 20


async def test_two_broadcasts_share_the_bots_limit(pipeline: Pipeline) -> None:
    first = await pipeline.open(range(10_001, 10_151), rate=30)
    second = await pipeline.open(range(20_001, 20_151), rate=30)
    async with pipeline.sender():

        async def halfway() -> bool:
            return bool((await pipeline.client.summary()).total >= 100)

        await pipeline.wait_for(halfway, within=20, what="100 messages")
        a = (await pipeline.states(first))["delivered"]
        b = (await pipeline.states(second))["delivered"]
        assert abs(a - b) <= 10, (a, b)
        assert (await pipeline.wait_done(first, within=30)) == {"delivered": 150}
        assert (await pipeline.wait_done(second, within=30)) == {"delivered": 150}
    summary = await pipeline.client.summary()
    assert max(summary.max_per_second.values()) <= 30
    assert summary.too_many_requests == {}
    assert summary.duplicates == {}


async def test_a_429_halts_the_whole_bot_for_retry_after(pipeline: Pipeline) -> None:
    uid = await pipeline.open(range(30_001, 30_201), rate=50, paid=True)
    async with pipeline.sender():

        async def started() -> bool:
            return bool((await pipeline.client.summary()).total >= 20)

        await pipeline.wait_for(started, within=10, what="20 messages")
        await pipeline.client.configure({"faults": {"storm": {"retry_after": 2, "seconds": 0.3}}})
        # The storm holds from before this instant: nothing is accepted in between.
        storm_at = datetime.now(UTC)
        states = await pipeline.wait_done(uid, within=30)
    assert states == {"delivered": 200}
    summary = await pipeline.client.summary()
    assert summary.duplicates == {}
    # Only the requests already under way meet the storm; then the bot waits it out.
    assert 1 <= sum(summary.too_many_requests.values()) <= 10
    accepted = [m.wall for m in await pipeline.client.messages() if m.wall > storm_at]
    # The first 429 reached the sender at about storm_at (within a few milliseconds).
    assert min(accepted) >= storm_at + timedelta(seconds=1.95)
    halt = await pipeline.kv.get(subjects.bot_halt_key("123456"))
    assert halt.value


async def test_bad_work_is_terminated_counted_and_sending_goes_on(pipeline: Pipeline) -> None:
    uid = await pipeline.open(range(40_001, 40_051), rate=100, paid=True)
    await pipeline.js.publish(subjects.work_subject(uid), b"\x00not msgpack")
    await pipeline.js.publish(subjects.work_subject(uid), b"\x81\xa1v\x09")  # {"v": 9}
    async with pipeline.sender() as sender:
        states = await pipeline.wait_done(uid, within=20)
        counted = sender.metrics.registry.get_sample_value(
            "herald_sender_bad_work_messages_total", {"reason": "undecodable"}
        )
    assert states == {"delivered": 50}
    assert counted == 2
    assert await pipeline.pending_work(uid) == 0


async def test_mutated_copies_of_work_never_send_twice_nor_outside_the_ledger(
    pipeline: Pipeline,
) -> None:
    chats = range(41_001, 41_201)
    uid = await pipeline.open(chats, rate=200, paid=True, batch=50)
    real = [
        encode(WorkBatch(uid=uid, recipients=[Recipient(c, None, f"User{c}") for c in part]))
        for part in (chats[i : i + 50] for i in range(0, len(chats), 50))
    ]
    draw = random.Random(20_241_124)  # reproducible garbage, not a secret
    garbage: list[bytes] = []
    for data in real:
        flipped = bytearray(data)
        flipped[draw.randrange(len(data))] ^= draw.randrange(1, 256)
        garbage += [
            data,  # an exact copy of work already queued
            data[: draw.randrange(1, len(data))],
            bytes(flipped),
            draw.randbytes(draw.randrange(1, 64)),
        ]
    garbage += [
        encode(WorkBatch(uid=str(uuid.uuid4()), recipients=[Recipient(41_001)])),
        encode(WorkBatch(uid=uid, recipients=[])),
        encode(WorkBatch(uid=uid, recipients=[Recipient(99_999)])),  # not in the ledger
        encode(WorkBatch(uid=uid, recipients=[Recipient(2**63)])),  # beyond the ledger's bigint
    ]
    for data in garbage:
        await pipeline.js.publish(subjects.work_subject(uid), data)
    parsed = [parse(data, uid=uid) for data in garbage]
    expected = Counter(result.reason for result in parsed if isinstance(result, BadWork))
    async with pipeline.sender() as sender:
        states = await pipeline.wait_done(uid, within=30)
        registry = sender.metrics.registry
        counted = {
            reason: registry.get_sample_value(
                "herald_sender_bad_work_messages_total", {"reason": reason}
            )
            for reason in expected
        }
    assert states == {"delivered": 200}
    assert counted == expected
    summary = await pipeline.client.summary()
    assert summary.duplicates == {}
    assert sorted(summary.per_chat) == list(chats)


async def test_stopping_a_broadcast_drops_its_work(pipeline: Pipeline) -> None:
    uid = await pipeline.open(range(50_001, 50_101), rate=20)
    async with pipeline.sender():

        async def some_delivered() -> bool:
            return bool((await pipeline.states(uid))["delivered"] >= 10)

        await pipeline.wait_for(some_delivered, within=10, what="10 deliveries")
        await pipeline.kv.delete(subjects.control_key(uid))
        stopped_at = datetime.now(UTC)
        await asyncio.sleep(2)
        states = await pipeline.states(uid)
    late = [
        m for m in await pipeline.client.messages() if m.wall > stopped_at + timedelta(seconds=1)
    ]
    assert late == []
    assert states["claimed"] + states["sending"] == 0
    assert states["pending"] > 50
