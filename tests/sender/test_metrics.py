"""What a real `herald-sender` process exposes on /metrics and writes to its log."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from herald.dev.processes import free_port

Pipeline = Any  # the fixture's class lives in conftest.py
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(port: int) -> Samples:
    return await asyncio.to_thread(_scrape, port)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_a_sender_process_counts_sends_results_and_429s(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    uid = await pipeline.open(range(60_001, 60_121), rate=50, paid=True)
    monkeypatch.setenv("HERALD_LOG_FORMAT", "json")  # the process inherits this environment
    sender = pipeline.process("sender-m", metrics_port=port, max_in_flight=8)

    async def started() -> bool:
        return bool((await pipeline.client.summary()).total >= 20)

    await pipeline.wait_for(started, within=20, what="20 messages")
    await pipeline.client.configure({"faults": {"storm": {"retry_after": 2, "seconds": 0.3}}})
    states = await pipeline.wait_done(uid, within=40)
    assert states == {"delivered": 120}
    summary = await pipeline.client.summary()

    async def settled() -> Samples | None:
        samples = await scrape(port)
        done = value(samples, "herald_sender_recipients_total", state="delivered") == 120
        return samples if done and value(samples, "herald_sender_in_flight") == 0 else None

    samples: Samples | None = None

    async def check() -> bool:
        nonlocal samples
        samples = await settled()
        return samples is not None

    await pipeline.wait_for(check, within=10, what="the counters to settle")
    assert samples is not None
    ok = value(samples, "herald_sender_messages_total", result="ok")
    limited = value(samples, "herald_sender_messages_total", result="retry_after")
    assert ok == summary.total == 120
    assert limited == sum(summary.too_many_requests.values()) >= 1
    assert value(samples, "herald_sender_retry_after_seconds_count") == limited
    assert value(samples, "herald_sender_retry_after_seconds_sum") == 2 * limited
    assert value(samples, "herald_sender_rate_limited_seconds_total") > 0
    assert value(samples, "herald_sender_send_duration_seconds_count") == ok + limited
    assert value(samples, "herald_sender_claimed_rows_total") >= 120
    assert value(samples, "herald_sender_recipients_total", state="failed") == 0
    assert value(samples, "herald_sender_bots") == 1
    assert value(samples, "herald_sender_bad_work_messages_total", reason="undecodable") == 0

    lines = sender.log_path.read_text().splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert records, sender.tail(20)
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    assert any(r["logger"] == "herald.sender.running" for r in records)
