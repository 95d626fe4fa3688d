"""A Broadcast applied with kubectl is delivered, paused, resumed, stopped and reported
exactly: every claim checked against what the emulator received and what the ledger holds."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import time
from typing import Any

import nats

from herald.core import subjects
from herald.core.subscribers import Subscriber
from herald.dev.samples import largest_content
from herald.dev.systems import TOKEN
from herald.dev.systems import LocalSystem as Herald
from herald.emulator import RecordedMessage


def counts(status: dict[str, Any]) -> dict[str, int]:
    keys = ("total", "delivered", "failed", "blocked", "pending", "uncertain")
    return {k: int(status.get(k) or 0) for k in keys}


async def ledger(herald: Herald) -> dict[str, int]:
    rows = await herald.sql("SELECT state, count(*) AS n FROM deliveries GROUP BY state")
    return {row["state"]: row["n"] for row in rows}


def replicas(herald: Herald) -> int:
    scale = json.loads(herald.kubectl("get", "deployment/herald-sender", "-o", "json").stdout)
    return int(scale["spec"].get("replicas") or 0)


async def test_full_delivery_exactly_once_within_the_rate(herald: Herald) -> None:
    await herald.seed(herald.subscribers(150))
    herald.apply(
        "hello",
        {
            "content": {"text": "<b>Hi</b> {first_name}"},
            "audience": {"subscribers": {}, "chatIds": [10_001, 99_999]},
            "rate": {"messagesPerSecond": 30},
        },
    )
    await herald.wait_for(lambda: replicas(herald) == 1, within=30, what="a sender replica")
    progressing = await herald.wait_condition("hello", "Progressing", within=30)
    assert progressing["reason"] in {"Materialising", "Publishing", "Sending"}
    waited = await asyncio.to_thread(
        herald.kubectl,
        "wait",
        "--for=condition=Complete",
        "bc/hello",
        "--timeout=90s",
        timeout=100,
    )
    assert "condition met" in waited.stdout
    status = herald.status("hello")
    assert counts(status) == {
        "total": 151,
        "delivered": 151,
        "failed": 0,
        "blocked": 0,
        "pending": 0,
        "uncertain": 0,
    }
    assert status["phase"] == "Completed"
    async with herald.emulator() as emulator:
        summary = await emulator.summary(token=TOKEN)
        first = await emulator.messages(token=TOKEN, chat_id=10_001)
    assert summary.total == 151
    assert summary.duplicates.get(TOKEN, {}) == {}
    assert summary.max_per_second[TOKEN] <= 30
    assert summary.too_many_requests.get(TOKEN, 0) == 0
    assert first[0].payload["text"] == "<b>Hi</b> User0"
    assert await ledger(herald) == {"delivered": 151}
    await herald.wait_for(lambda: replicas(herald) == 0, within=30, what="scale to zero")


async def test_pause_stops_sending_within_a_second_and_resume_completes(herald: Herald) -> None:
    await herald.seed(herald.subscribers(240))
    herald.apply(
        "pausable",
        {
            "content": {"text": "hello"},
            "audience": {"subscribers": {}},
            "rate": {"messagesPerSecond": 20},
        },
    )

    async def delivered() -> int:
        async with herald.emulator() as emulator:
            return (await emulator.summary(token=TOKEN)).total

    deadline = time.monotonic() + 60
    while await delivered() < 40:
        assert time.monotonic() < deadline, herald.operator.tail()
        await asyncio.sleep(0.2)
    herald.kubectl("patch", "bc", "pausable", "--type=merge", "-p", '{"spec":{"paused":true}}')
    paused_at = dt.datetime.now(dt.UTC)
    await herald.wait_condition("pausable", "Paused", within=10)
    await asyncio.sleep(3)
    async with herald.emulator() as emulator:
        messages: list[RecordedMessage] = await emulator.messages(token=TOKEN)
    late = [m for m in messages if m.wall > paused_at + dt.timedelta(seconds=1)]
    assert late == []
    sent_while_paused = len(messages)
    assert sent_while_paused < 240
    status = herald.status("pausable")
    assert status["phase"] == "Paused"
    assert status["observedGeneration"] == herald.get("pausable")["metadata"]["generation"]

    herald.kubectl("patch", "bc", "pausable", "--type=merge", "-p", '{"spec":{"paused":false}}')
    await herald.wait_condition("pausable", "Complete", within=60)
    async with herald.emulator() as emulator:
        summary = await emulator.summary(token=TOKEN)
    assert summary.total == 240
    assert summary.duplicates.get(TOKEN, {}) == {}
    assert summary.max_per_second[TOKEN] <= 20
    assert counts(herald.status("pausable"))["delivered"] == 240


async def test_two_broadcasts_on_one_bot_share_its_limit(herald: Herald) -> None:
    await herald.seed(herald.subscribers(200))
    for name, first in (("first", 10_001), ("second", 10_101)):
        herald.apply(
            name,
            {
                "content": {"text": name},
                "audience": {"chatIds": list(range(first, first + 100))},
                "rate": {"messagesPerSecond": 30},
            },
        )
    await herald.wait_condition("first", "Complete", within=60)
    await herald.wait_condition("second", "Complete", within=60)
    async with herald.emulator() as emulator:
        summary = await emulator.summary(token=TOKEN)
    assert summary.total == 200
    assert summary.max_per_second[TOKEN] <= 30
    assert summary.too_many_requests.get(TOKEN, 0) == 0
    assert summary.duplicates.get(TOKEN, {}) == {}


async def test_blocked_users_are_counted_and_turned_inactive(herald: Herald) -> None:
    await herald.seed(herald.subscribers(60))
    async with herald.emulator() as emulator:
        await emulator.configure({"blocked": [10_001, 10_002], "deactivated": [10_003]})
    herald.apply(
        "with-blocked",
        {
            "content": {"text": "hello"},
            "audience": {"subscribers": {}, "chatIds": [777]},
            "rate": {"messagesPerSecond": 30},
        },
    )
    async with herald.emulator() as emulator:
        await emulator.configure({"not_found": [777]})
    await herald.wait_condition("with-blocked", "Complete", within=60)
    status = counts(herald.status("with-blocked"))
    assert status == {
        "total": 61,
        "delivered": 57,
        "failed": 1,
        "blocked": 3,
        "pending": 0,
        "uncertain": 0,
    }
    inactive = await herald.sql("SELECT chat_id FROM subscribers WHERE NOT is_active ORDER BY 1")
    assert [r["chat_id"] for r in inactive] == [10_001, 10_002, 10_003]
    reasons = await herald.sql("SELECT reason FROM deliveries WHERE state = 'failed'")
    assert reasons[0]["reason"]


async def test_bad_markup_fails_the_broadcast_within_the_first_sends(herald: Herald) -> None:
    await herald.seed(herald.subscribers(100))
    herald.apply(
        "bad-markup",
        {
            "content": {"text": "<b>unclosed", "parseMode": "HTML"},
            "audience": {"subscribers": {}},
            "rate": {"messagesPerSecond": 30},
        },
    )
    failed = await herald.wait_condition("bad-markup", "Failed", within=60)
    assert failed["reason"] == "ContentRejected"
    assert "parse entities" in failed["message"]
    assert herald.condition("bad-markup", "Stalled")["status"] == "True"  # type: ignore[index]
    assert herald.status("bad-markup")["phase"] == "Failed"
    # Telegram saw only the first few attempts; every recipient is closed with the reason.
    async with herald.emulator() as emulator:
        summary = await emulator.summary(token=TOKEN)
    assert summary.total == 0
    assert 1 <= sum(summary.errors.values()) <= 5
    await herald.wait_for(
        lambda: herald.status("bad-markup").get("pending") == 0, within=20, what="rows closed"
    )
    reasons = await herald.sql("SELECT state, reason, count(*) AS n FROM deliveries GROUP BY 1, 2")
    assert [(r["state"], r["reason"], r["n"]) for r in reasons] == [
        ("failed", "ContentRejected", 100)
    ]


async def test_a_future_start_is_scheduled_then_sent(herald: Herald) -> None:
    await herald.seed(herald.subscribers(10))
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=6)
    herald.apply(
        "later",
        {
            "content": {"text": "later"},
            "audience": {"subscribers": {}},
            "schedule": {"startAt": start.isoformat().replace("+00:00", "Z")},
        },
    )
    await herald.wait_for(
        lambda: herald.status("later").get("phase") == "Scheduled", within=20, what="Scheduled"
    )
    await herald.wait_condition("later", "Complete", within=60)
    async with herald.emulator() as emulator:
        messages = await emulator.messages(token=TOKEN)
    assert len(messages) == 10
    assert min(m.wall for m in messages) >= start


async def test_a_deadline_stops_sending(herald: Herald) -> None:
    await herald.seed(herald.subscribers(300))

    def rfc3339(at: dt.datetime) -> str:
        return at.isoformat().replace("+00:00", "Z")

    later = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(minutes=5)
    herald.apply(
        "short-lived",
        {
            "content": {"text": "hurry"},
            "audience": {"subscribers": {}},
            "rate": {"messagesPerSecond": 10},
            "schedule": {"deadline": rfc3339(later)},
        },
    )

    async def delivered() -> int:
        async with herald.emulator() as emulator:
            return (await emulator.summary(token=TOKEN)).total

    # Sending under way (however long a sender takes to start here), then a deadline that
    # leaves far too little time for 300 at 10/s.
    started = time.monotonic()
    while await delivered() < 10:
        assert time.monotonic() - started < 60, herald.operator.tail()
        await asyncio.sleep(0.2)
    deadline = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=3)
    patch = json.dumps({"spec": {"schedule": {"deadline": rfc3339(deadline)}}})
    herald.kubectl("patch", "bc", "short-lived", "--type=merge", "-p", patch)
    stalled = await herald.wait_condition("short-lived", "Stalled", within=60)
    assert stalled["reason"] == "DeadlineExceeded"
    await asyncio.sleep(2)
    async with herald.emulator() as emulator:
        messages = await emulator.messages(token=TOKEN)
    assert 0 < len(messages) < 300
    assert max(m.wall for m in messages) <= deadline + dt.timedelta(seconds=1)
    status = counts(herald.status("short-lived"))
    assert status["pending"] == 0
    assert status["delivered"] + status["failed"] + status["uncertain"] == 300


async def test_deleting_mid_way_stops_it_and_keeps_the_ledger(herald: Herald) -> None:
    await herald.seed(herald.subscribers(300))
    herald.apply(
        "doomed",
        {
            "content": {"text": "bye"},
            "audience": {"subscribers": {}},
            "rate": {"messagesPerSecond": 20},
        },
    )
    await herald.wait_for(
        lambda: int(herald.status("doomed").get("delivered") or 0) > 10, within=60, what="sends"
    )
    await asyncio.to_thread(herald.kubectl, "delete", "bc", "doomed", "--timeout=60s")
    gone_at = dt.datetime.now(dt.UTC)
    await asyncio.sleep(3)
    async with herald.emulator() as emulator:
        messages = await emulator.messages(token=TOKEN)
    assert [m for m in messages if m.wall > gone_at + dt.timedelta(seconds=1)] == []
    rows = await ledger(herald)
    assert sum(rows.values()) == 300
    assert rows["delivered"] == len(messages)


async def test_a_killed_sender_loses_nothing_and_sends_nothing_twice(herald: Herald) -> None:
    await herald.seed(herald.subscribers(300))
    herald.apply(
        "survivor",
        {
            "content": {"text": "still here"},
            "audience": {"subscribers": {}},
            "rate": {"messagesPerSecond": 30},
        },
    )
    await herald.wait_for(
        lambda: int(herald.status("survivor").get("delivered") or 0) > 60, within=60, what="sends"
    )
    victim = herald.supervisor.pids[0]
    os.kill(victim, signal.SIGKILL)
    await herald.wait_condition("survivor", "Complete", within=120)
    await herald.wait_for(
        lambda: herald.supervisor.restarts >= 1, within=10, what="the killed sender replaced"
    )
    async with herald.emulator() as emulator:
        summary = await emulator.summary(token=TOKEN)
    assert summary.duplicates.get(TOKEN, {}) == {}
    status = counts(herald.status("survivor"))
    assert status["pending"] == 0
    assert status["delivered"] + status["uncertain"] == 300
    assert status["delivered"] == summary.total or status["uncertain"] > 0
    assert status["uncertain"] <= 64  # the sender's in-flight bound


async def test_work_purged_mid_way_is_queued_again_and_nothing_goes_twice(herald: Herald) -> None:
    await herald.seed(herald.subscribers(200))
    herald.apply(
        "purged",
        {
            "content": {"text": "once"},
            "audience": {"subscribers": {}},
            "rate": {"messagesPerSecond": 30},
        },
    )
    await herald.wait_for(
        lambda: int(herald.status("purged").get("delivered") or 0) > 30, within=60, what="sends"
    )
    uid = herald.kubectl("get", "bc", "purged", "-o", "jsonpath={.metadata.uid}").stdout
    client = await nats.connect(herald.nats_url)
    try:
        await client.jetstream().purge_stream(
            subjects.WORK_STREAM, subject=subjects.work_subject(uid)
        )
    finally:
        await client.close()
    await herald.wait_condition("purged", "Complete", within=120)
    async with herald.emulator() as emulator:
        summary = await emulator.summary(token=TOKEN)
    assert summary.duplicates.get(TOKEN, {}) == {}
    assert summary.total == 200
    assert await ledger(herald) == {"delivered": 200}


async def test_the_largest_content_the_crd_admits_is_stored_and_delivered(herald: Herald) -> None:
    content = largest_content()
    longest = max(content["localized"], key=lambda code: len(content["localized"][code]["text"]))
    await herald.seed(
        [Subscriber(chat_id=70_001), Subscriber(chat_id=70_002, language_code=longest)]
    )
    # Through kubectl's client-side apply, which keeps its own copy of the object in an
    # annotation, beside the copy the operator's kopf keeps.
    herald.apply("largest", {"content": content, "audience": {"subscribers": {}}})
    await herald.wait_condition("largest", "Complete", within=60)
    assert counts(herald.status("largest"))["delivered"] == 2
    async with herald.emulator() as emulator:
        sent = {m.chat_id: m for m in await emulator.messages(token=TOKEN) if m.sending}
    default, variant = sent[70_001].payload, sent[70_002].payload
    assert default["text"] == content["text"]
    assert sum(len(row) for row in default["reply_markup"]["inline_keyboard"]) == 80
    assert variant["text"] == content["localized"][longest]["text"]
