"""Telegram misbehaving, as the emulator can make it: flood-wait storms, bursts of 5xx,
slow answers and answers that never come, during 5,000-recipient broadcasts (a small one
for the storms, whose cost is the waiting)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
from typing import Any

import pytest

from faults import checks
from herald.dev.systems import TOKEN, LocalSystem

AUDIENCE = 5_000
SEED = 20_241_124
SLOW_IN_FLIGHT = 64


async def configure(herald: LocalSystem, patch: dict[str, Any]) -> None:
    async with herald.emulator() as emulator:
        await emulator.configure(patch)


async def test_429_storms_halt_the_bot_for_their_whole_retry_after(herald: LocalSystem) -> None:
    await checks.seed(herald, 600)
    checks.apply_paid(herald, "storms", rate=200)
    await checks.wait_delivered(herald, 100)
    # Only the requests already under way meet a storm this short; each is answered 429.
    await configure(herald, {"faults": {"storm": {"retry_after": 30, "seconds": 0.2}}})
    await asyncio.sleep(5)
    # A sender killed during the halt: its replacement reads the halt, and waits too.
    os.kill(await checks.wait_lease_holder(herald), signal.SIGKILL)
    await checks.wait_delivered(herald, 400, within=90)
    await configure(herald, {"faults": {"storm": {"retry_after": 5, "seconds": 0.2}}})
    checked = await checks.verify(herald, "storms", floods=True)
    floods = [r for r in checked.refusals if r.status == 429]
    assert {r.retry_after for r in floods} == {5, 30}
    # Nothing was claimed through the halt, so the kill left nothing uncertain.
    assert checked.ledger == {"delivered": 600}


async def test_escalating_flood_waits_are_honoured_whole_across_a_sender_restart(
    herald: LocalSystem,
) -> None:
    """A bot asked to send faster than Telegram lets it: each 429 says to wait longer than
    the last (1, 2, 4 s), as Telegram does to a bot that keeps hitting its limit."""
    await configure(herald, {"limits": {"paid_rate": 100, "escalation": {"max_retry_after": 4}}})
    await checks.seed(herald, 600)
    checks.apply_paid(herald, "escalating", rate=200)

    async def longest_wait() -> int:
        async with herald.emulator() as emulator:
            refusals = await emulator.refusals(token=TOKEN)
        return max((r.retry_after or 0 for r in refusals if r.status == 429), default=0)

    deadline = asyncio.get_running_loop().time() + 60
    while await longest_wait() < 4:
        assert asyncio.get_running_loop().time() < deadline, "the waits never grew to 4 s"
        await asyncio.sleep(0.1)
    # Killed inside the longest wait: its replacement reads the halt, and waits it out too.
    os.kill(await checks.wait_lease_holder(herald), signal.SIGKILL)
    checked = await checks.verify(herald, "escalating", floods=True)
    waits = {r.retry_after for r in checked.refusals if r.status == 429}
    assert {1, 2, 4} <= waits
    assert checked.ledger == {"delivered": 600}


async def test_5xx_bursts_are_retried_and_the_rest_fail_with_a_reason(herald: LocalSystem) -> None:
    draw = random.Random(SEED)  # reproducible moments, not a secret
    await configure(herald, {"seed": SEED})
    await checks.seed(herald, AUDIENCE)
    checks.apply_paid(herald, "bursts")
    for moment in sorted(draw.sample(range(100, AUDIENCE - 1000), 3)):
        await checks.wait_delivered(herald, moment)
        # Longer than a row's three attempts, which Telegram's one message per second per
        # chat keeps a second apart: the rows that meet the burst three times fail for good.
        await configure(herald, {"faults": {"error_ratio": 0.6}})
        await asyncio.sleep(3)
        await configure(herald, {"faults": {"error_ratio": 0.0}})
    checked = await checks.verify(herald, "bursts")
    async with herald.emulator() as emulator:
        errors = (await emulator.summary(token=TOKEN)).errors
    assert set(errors) <= {500, 502}
    assert sum(errors.values()) > 0
    # Three attempts each: a recipient fails only if every one met a burst.
    assert set(checked.reasons) == {"failed:ServerError"}
    assert checked.ledger["delivered"] + checked.ledger["failed"] == AUDIENCE
    assert 0 < 3 * checked.ledger["failed"] <= sum(errors.values())


# Telegram's ~100 ms answers need more requests open to keep a broadcast quick.
@pytest.mark.herald_settings(HERALD_SENDER_MAX_IN_FLIGHT=str(SLOW_IN_FLIGHT))
async def test_slow_answers_and_a_spell_past_the_timeout(herald: LocalSystem) -> None:
    # Telegram's usual round trip, then answers slower than the sender's 2 s timeout.
    await configure(herald, {"faults": {"latency_ms": 80, "jitter_ms": 40}, "seed": SEED})
    await checks.seed(herald, AUDIENCE)
    checks.apply_paid(herald, "slow")
    await checks.wait_delivered(herald, 2_000)
    await configure(herald, {"faults": {"latency_ms": 2_500, "jitter_ms": 0}})
    await asyncio.sleep(1)
    await configure(herald, {"faults": {"latency_ms": 80, "jitter_ms": 40}})
    checked = await checks.verify(herald, "slow", uncertain_at_most=SLOW_IN_FLIGHT)
    # Answers that came too late: recorded uncertain, and never sent again.
    assert checked.ledger["uncertain"] > 0
    assert set(checked.reasons) == {"uncertain:Timeout"}
    assert checked.ledger["delivered"] + checked.ledger["uncertain"] == AUDIENCE


async def test_lost_answers_are_uncertain_exactly_where_they_were_lost(herald: LocalSystem) -> None:
    await configure(herald, {"faults": {"drop_ratio": 0.02}, "seed": SEED})
    await checks.seed(herald, AUDIENCE)
    checks.apply_paid(herald, "dropped")
    checked = await checks.verify(herald, "dropped", uncertain_at_most=AUDIENCE)
    dropped = {m.chat_id for m in checked.received if m.dropped}
    uncertain = await herald.sql(
        "SELECT chat_id FROM deliveries WHERE broadcast_uid = $1 AND state = 'uncertain'",
        checked.uid,
    )
    assert dropped
    assert {row["chat_id"] for row in uncertain} == dropped
    assert checked.ledger["delivered"] + len(dropped) == AUDIENCE
