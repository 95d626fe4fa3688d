"""Sender processes killed (-9) and stopped (SIGTERM) in the middle of a 5,000-recipient
broadcast. A standby replica takes the bot's lease over, as a second Pod would; the killed
one is replaced by the supervisor, as a ReplicaSet would."""

from __future__ import annotations

import os
import random
import signal

import pytest

from faults import checks
from herald.dev.systems import LocalSystem

AUDIENCE = 5_000
BATCHES = 50  # the operator's 100 recipients per work message
IN_FLIGHT = 8
KILLS = 10
STOPS = 6
SEED = 20_241_124
# A warm standby: a takeover costs a lease expiry, not a process start.
STANDBY = {"HERALD_SCALING_MIN_REPLICAS": "2"}


async def start(herald: LocalSystem, name: str) -> None:
    """Queue the whole broadcast paused, shorten its ack wait, then let it go."""
    await checks.seed(herald, AUDIENCE)
    checks.apply_paid(herald, name, paused=True)
    uid = await checks.wait_published(herald, name, BATCHES)
    await checks.shorten_ack_wait(herald, uid)
    herald.kubectl("patch", "bc", name, "--type=merge", "-p", '{"spec":{"paused":false}}')


@pytest.mark.herald_settings(**STANDBY, HERALD_SENDER_MAX_IN_FLIGHT=str(IN_FLIGHT))
async def test_kill_9_at_ten_random_moments(herald: LocalSystem) -> None:
    draw = random.Random(SEED)  # reproducible moments, not a secret
    moments = sorted(draw.sample(range(100, AUDIENCE - 500), KILLS))
    await start(herald, "crashes")
    for moment in moments:
        await checks.wait_delivered(herald, moment)
        os.kill(await checks.wait_lease_holder(herald), signal.SIGKILL)
    checked = await checks.verify(herald, "crashes", uncertain_at_most=KILLS * IN_FLIGHT)
    assert herald.supervisor.restarts >= KILLS
    assert checked.ledger["delivered"] + checked.ledger["uncertain"] == AUDIENCE
    assert set(checked.reasons) <= {"uncertain:SenderLost"}


@pytest.mark.herald_settings(**STANDBY, HERALD_SENDER_MAX_IN_FLIGHT=str(IN_FLIGHT))
async def test_sigterm_hands_over_without_leaving_anything_uncertain(herald: LocalSystem) -> None:
    draw = random.Random(SEED)
    moments = sorted(draw.sample(range(100, AUDIENCE - 500), STOPS))
    await start(herald, "handover")
    for moment in moments:
        await checks.wait_delivered(herald, moment)
        os.kill(await checks.wait_lease_holder(herald), signal.SIGTERM)
    checked = await checks.verify(herald, "handover")
    assert herald.supervisor.restarts >= len(moments)
    assert checked.ledger == {"delivered": AUDIENCE}
