"""Real `herald-sender` processes: killed hard, stopped gracefully, taken over."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

import nats.js.errors
import pytest

from herald.core import subjects
from herald.operator import messages

Pipeline = Any  # the fixture's class lives in conftest.py

MAX_IN_FLIGHT = 8


async def _delivered_at_least(pipeline: Pipeline, uid: str, count: int) -> None:
    async def enough() -> bool:
        return bool((await pipeline.states(uid))["delivered"] >= count)

    await pipeline.wait_for(enough, within=30, what=f"{count} deliveries")


async def test_kill_9_mid_broadcast_then_a_new_sender_completes(pipeline: Pipeline) -> None:
    await pipeline.client.configure({"faults": {"latency_ms": 40}})
    uid = await pipeline.open(range(1, 401), rate=100, paid=True)
    first = pipeline.process("sender-a", max_in_flight=MAX_IN_FLIGHT)
    await _delivered_at_least(pipeline, uid, 100)
    os.kill(first.pid, signal.SIGKILL)
    await asyncio.sleep(0.2)
    assert not first.alive
    pipeline.process("sender-b", max_in_flight=MAX_IN_FLIGHT)
    states = await pipeline.wait_done(uid, within=60)
    summary = await pipeline.client.summary()
    assert summary.duplicates == {}
    assert states["delivered"] + states["uncertain"] == 400
    assert states["uncertain"] <= MAX_IN_FLIGHT
    # What the ledger calls delivered went out exactly once; uncertain rows at most once.
    assert summary.total >= states["delivered"]
    assert summary.total <= states["delivered"] + states["uncertain"]


async def test_sigterm_finishes_in_flight_sends_and_gives_the_rest_back(
    pipeline: Pipeline,
) -> None:
    await pipeline.client.configure({"faults": {"latency_ms": 300}})
    uid = await pipeline.open(range(1, 301), rate=100, paid=True)
    sender = pipeline.process("sender-a", max_in_flight=16, shutdown_seconds=10)
    try:
        await _delivered_at_least(pipeline, uid, 50)
    except AssertionError:
        raise AssertionError(sender.tail(40)) from None
    started = time.monotonic()
    os.kill(sender.pid, signal.SIGTERM)

    async def exited() -> bool:
        return not sender.alive

    try:
        await pipeline.wait_for(exited, within=15, what="the sender to exit", interval=0.05)
    except AssertionError:
        raise AssertionError(sender.tail(40)) from None
    took = time.monotonic() - started
    assert not sender.alive, sender.tail()
    assert sender.returncode == 0, sender.tail()
    assert took < 10
    states = await pipeline.states(uid)
    summary = await pipeline.client.summary()
    # Everything sent is recorded, nothing is left claimed, the rest waits as pending.
    assert states["claimed"] + states["sending"] == 0
    assert states["uncertain"] == 0
    assert states["delivered"] == summary.total
    assert states["pending"] > 0
    # The lease was given up on the way out, not left to expire.
    with pytest.raises(nats.js.errors.KeyNotFoundError):
        await pipeline.kv.get(subjects.bot_lease_key("123456"))
    # The unfinished work went back to JetStream: another sender completes it at once.
    await pipeline.client.configure({"faults": {"latency_ms": 0}})
    pipeline.process("sender-b")
    states = await pipeline.wait_done(uid, within=30)
    assert states == {"delivered": 300}
    assert (await pipeline.client.summary()).duplicates == {}


async def test_kill_9_mid_send_of_a_message_leaves_it_uncertain_and_never_sends_it_again(
    pipeline: Pipeline,
) -> None:
    # The emulator holds each answer, so the sender dies with the request out.
    await pipeline.client.configure({"faults": {"latency_ms": 2500}})
    bot = await pipeline.bot()  # the operator's part; pipeline.message plays herald-api's
    first = pipeline.process("sender-a")
    message_id = await pipeline.message(8001, bot=bot)

    async def claimed() -> bool:
        return bool((await pipeline.message_row(message_id))["state"] == "claimed")

    await pipeline.wait_for(claimed, within=20, what="the message claimed", interval=0.02)
    os.kill(first.pid, signal.SIGKILL)
    await asyncio.sleep(0.2)
    assert not first.alive
    # The next holder gets the message back once its ack wait runs out, finds it claimed by
    # a sender that may have sent it, and drops it.
    pipeline.process("sender-b")

    async def dropped() -> bool:
        return bool(await pipeline.queued_messages() == 0)

    await pipeline.wait_for(dropped, within=30, what="the message taken and dropped")
    row = await pipeline.message_row(message_id)
    assert (row["state"], row["claimed_by"]) == ("claimed", "sender-a")
    # The operator's sweep, as it runs once the claim is older than its TTL.
    swept = await messages.sweep(pipeline.db, claim_ttl=0)
    assert swept.uncertain == 1
    row = await pipeline.message_row(message_id)
    assert (row["state"], row["reason"]) == ("uncertain", "SenderLost")
    await asyncio.sleep(3)  # whatever the emulator still holds is answered by now
    summary = await pipeline.client.summary()
    assert summary.per_chat.get(8001, 0) <= 1
    assert summary.duplicates == {}
