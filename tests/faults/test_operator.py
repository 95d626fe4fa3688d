"""The operator killed (-9) while it queues a 5,000-recipient broadcast, and again while it
refreshes the status during the sending; a new operator process takes over each time, as a
Deployment would start a new Pod."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time

import nats
import pytest

from faults import checks
from herald.core import subjects
from herald.dev.systems import LocalSystem

AUDIENCE = 5_000
# Tiny work messages make queueing take long enough to be interrupted half-way.
BATCH_SIZE = 2
SEED = 20_241_124


async def wait_queued_some(herald: LocalSystem, uid: str) -> int:
    """Until the broadcast's consumer has seen some work (pending, held or acked)."""
    client = await nats.connect(herald.nats_url)
    try:
        js = client.jetstream()
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(nats.js.errors.NotFoundError):
                info = await js.consumer_info(subjects.WORK_STREAM, subjects.work_consumer(uid))
                if count := info.num_pending + info.delivered.stream_seq:
                    return int(count)
            assert time.monotonic() < deadline, herald.operator.tail(30)
            await asyncio.sleep(0.005)
    finally:
        await client.close()


@pytest.mark.herald_settings(HERALD_OPERATOR_BATCH_SIZE=str(BATCH_SIZE))
async def test_operator_killed_mid_publish_and_mid_refresh(herald: LocalSystem) -> None:
    batches = AUDIENCE // BATCH_SIZE
    await checks.seed(herald, AUDIENCE)
    checks.apply_paid(herald, "restarts")
    uid: str = herald.get("restarts")["metadata"]["uid"]
    first = herald.operator
    replacements = []
    try:
        # Mid-publish: some work is queued, not all of it.
        some = await wait_queued_some(herald, uid)
        os.kill(first.pid, signal.SIGKILL)
        assert some < batches
        marks = await herald.sql("SELECT published_at FROM broadcasts WHERE uid = $1", uid)
        assert marks[0]["published_at"] is None
        replacements.append(checks.restart_operator(herald))
        # Mid-refresh: once the new operator writes the status (every second while
        # sending), at a random moment of the sending.
        await refreshed(herald, "restarts")
        moment = random.Random(SEED).randrange(AUDIENCE // 2, AUDIENCE - 1_000)
        await checks.wait_delivered(herald, moment)
        os.kill(herald.operator.pid, signal.SIGKILL)
        assert await checks.sent(herald) < AUDIENCE, "the sending ended before the kill"
        await asyncio.sleep(1)
        replacements.append(checks.restart_operator(herald))
        checked = await checks.verify(herald, "restarts")
    finally:
        for operator in replacements:
            operator.stop(timeout=15)
    assert checked.ledger == {"delivered": AUDIENCE}
    assert await announced(herald) == 1


async def refreshed(herald: LocalSystem, name: str) -> None:
    """Until the status's delivered count moves: the operator is up and refreshing."""
    before = herald.status(name).get("delivered")
    await herald.wait_for(
        lambda: herald.status(name).get("delivered") != before, within=60, what="a refresh"
    )


async def announced(herald: LocalSystem) -> int:
    """Completion records published (one per broadcast, whatever the restarts)."""
    client = await nats.connect(herald.nats_url)
    try:
        js = client.jetstream()
        info = await js.stream_info(subjects.EVENTS_STREAM, subjects_filter=">")
        return int((info.state.subjects or {}).get(subjects.COMPLETIONS_SUBJECT, 0))
    finally:
        await client.close()
