"""A sender killed (-9) in the middle of a recall: a standby takes the bot's lease over, and
the killed sender's claims on rows to delete are taken over once older than the claim TTL.
Deleting twice is harmless ("message to delete not found" means recalled), so every
delivered row ends recalled and every chat sees nothing."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time

import pytest

from faults import checks
from herald.dev.systems import TOKEN, LocalSystem

AUDIENCE = 300
STANDBY = {"HERALD_SCALING_MIN_REPLICAS": "2"}


async def _deletions(herald: LocalSystem) -> int:
    async with herald.emulator() as emulator:
        return len(await emulator.messages(token=TOKEN, method="deleteMessage"))


@pytest.mark.herald_settings(**STANDBY)
async def test_kill_9_mid_recall_leaves_every_row_recalled(herald: LocalSystem) -> None:
    await checks.seed(herald, AUDIENCE)
    checks.apply_paid(herald, "oops", rate=100)
    await herald.wait_condition("oops", "Complete", within=120)
    herald.kubectl(
        "patch", "bc", "oops", "--type=merge", "-p", json.dumps({"spec": {"recall": True}})
    )
    for moment in (AUDIENCE // 4, AUDIENCE // 2):
        deadline = time.monotonic() + 60
        while await _deletions(herald) < moment:
            assert time.monotonic() < deadline, herald.operator.tail(30)
            await asyncio.sleep(0.05)
        os.kill(await checks.wait_lease_holder(herald), signal.SIGKILL)
    await herald.wait_condition("oops", "Recalled", within=120)
    status = herald.status("oops")
    assert status["recalled"] == status["delivered"] == AUDIENCE
    uid = herald.get("oops")["metadata"]["uid"]
    rows = await herald.sql(
        "SELECT recall_outcome, count(*) AS n FROM deliveries WHERE broadcast_uid = $1"
        " GROUP BY recall_outcome",
        uid,
    )
    assert {row["recall_outcome"]: row["n"] for row in rows} == {"recalled": AUDIENCE}
    await checks.wait_replaced(herald, 2)
    async with herald.emulator() as emulator:
        for subscriber in herald.subscribers(AUDIENCE)[:: AUDIENCE // 10]:
            assert await emulator.chat(token=TOKEN, chat_id=subscriber.chat_id) == []
        # Only deletions a killed sender may have made before recording them were made twice.
        refused = await emulator.refusals(token=TOKEN, method="deleteMessage")
        assert all(r.description == "Bad Request: message to delete not found" for r in refused)
        assert len(refused) <= 2 * checks.MAX_IN_FLIGHT * 10
