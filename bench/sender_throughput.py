"""Sender benchmarks (figures, not tests): real NATS, Postgres, emulator and sender processes.

    .venv/bin/python bench/sender_throughput.py [--recipients 20000] [--seconds 20]

1. Throughput per process: emulator limits off, no latency, one paid broadcast with a rate
   far above what a process can do. Goal: >= 1,500 msg/s.
2. Rate fidelity: Telegram's free 30 msg/s, 80 ms per request, ~`--seconds` of sending.
   Goal: delivered / allowed >= 0.98 with zero 429s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import nats
from nats.js.api import AckPolicy, ConsumerConfig
from pydantic import SecretStr

from herald.core import streams, subjects
from herald.core.broadcasts import Content
from herald.core.envelopes import BroadcastState, ControlRecord, Recipient, WorkBatch, encode
from herald.core.migrating import apply_migrations
from herald.dev.nats import NatsServer
from herald.dev.postgres import PostgresCluster
from herald.dev.processes import ManagedProcess, free_port, http_ok, wait_until
from herald.emulator import EmulatorClient

TOKEN = "777000:bench-token"
BIN = Path(sys.executable).parent


async def _prepare(nats_url: str, dsn: str, n: int, *, rate: float, paid: bool) -> str:
    uid = str(uuid.uuid4())
    db = await asyncpg.connect(dsn)
    try:
        await db.execute(
            "INSERT INTO subscribers (chat_id, first_name) "
            "SELECT g, 'User' || g FROM generate_series(1, $1) g ON CONFLICT DO NOTHING",
            n,
        )
        await db.execute(
            "INSERT INTO deliveries (broadcast_uid, chat_id) "
            "SELECT $1, g FROM generate_series(1, $2) g",
            uuid.UUID(uid),
            n,
        )
    finally:
        await db.close()
    client = await nats.connect(nats_url)
    try:
        js = client.jetstream()
        await streams.ensure_work_stream(js)
        kv = await streams.ensure_control_bucket(js)
        await js.add_consumer(
            subjects.WORK_STREAM,
            ConsumerConfig(
                durable_name=subjects.work_consumer(uid),
                filter_subject=subjects.work_subject(uid),
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=30,
            ),
        )
        for start in range(1, n + 1, 100):
            batch = WorkBatch(
                uid=uid,
                recipients=[
                    Recipient(c, None, f"User{c}") for c in range(start, min(n, start + 99) + 1)
                ],
            )
            await js.publish(
                subjects.work_subject(uid), encode(batch), headers={"Nats-Msg-Id": batch.msg_id}
            )
        record = ControlRecord(
            uid=uid,
            namespace="bench",
            name="bench",
            generation=1,
            bot_id=TOKEN.partition(":")[0],
            token=SecretStr(TOKEN),
            content=Content(text="Hello <b>{first_name}</b>"),
            messages_per_second=rate,
            allow_paid_broadcast=paid,
            state=BroadcastState.ACTIVE,
        )
        await kv.put(subjects.control_key(uid), encode(record))
    finally:
        await client.close()
    return uid


async def _delivered(dsn: str, uid: str) -> int:
    db = await asyncpg.connect(dsn)
    try:
        value = await db.fetchval(
            "SELECT count(*) FROM deliveries WHERE broadcast_uid = $1 AND state = 'delivered'",
            uuid.UUID(uid),
        )
        return int(value)
    finally:
        await db.close()


async def _scenario(
    name: str,
    *,
    work: Path,
    nats_url: str,
    dsn: str,
    emulator_args: list[str],
    sender_env: dict[str, str],
    n: int,
    rate: float,
    paid: bool,
    allowed: float | None,
) -> dict[str, Any]:
    port = free_port()
    emulator = ManagedProcess(
        "emulator",
        [str(BIN / "herald-emulator"), "--port", str(port), *emulator_args],
        work / f"{name}-emulator.log",
    ).start()
    url = f"http://127.0.0.1:{port}"
    sender: ManagedProcess | None = None
    try:
        wait_until(
            lambda: http_ok(f"{url}/_emulator/config"),
            timeout=20,
            what="emulator",
            process=emulator,
        )
        uid = await _prepare(nats_url, dsn, n, rate=rate, paid=paid)
        env = {
            **os.environ,
            "HERALD_NATS_URL": nats_url,
            "HERALD_DATABASE_URL": dsn,
            "HERALD_TELEGRAM_API_URL": url,
            "HERALD_SENDER_METRICS_PORT": "0",
            **sender_env,
        }
        sender = ManagedProcess(
            "sender", [str(BIN / "herald-sender")], work / f"{name}-sender.log", env=env
        ).start()
        deadline = time.monotonic() + 600
        while await _delivered(dsn, uid) < n and time.monotonic() < deadline:
            if not sender.alive:
                raise RuntimeError(f"sender died:\n{sender.tail()}")
            await asyncio.sleep(0.5)
        async with EmulatorClient(url) as client:
            summary = await client.summary()
            times = sorted(m.monotonic for m in await client.messages())
        span = times[-1] - times[0]
        measured = (len(times) - 1) / span if span > 0 else float("nan")
        result: dict[str, Any] = {
            "scenario": name,
            "messages": summary.total,
            "seconds": round(span, 2),
            "msg_per_s": round(measured, 1),
            "max_in_any_second": max(summary.max_per_second.values()),
            "429s": sum(summary.too_many_requests.values()),
            "duplicates": sum(len(d) for d in summary.duplicates.values()),
        }
        if allowed is not None:
            result["delivered_over_allowed"] = round(measured / allowed, 4)
        return result
    finally:
        if sender is not None:
            sender.stop()
        emulator.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--only", choices=["throughput", "rate"], default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="herald-bench-") as tmp:
        work = Path(tmp)
        with NatsServer(work / "nats") as nats_server, PostgresCluster(work / "pg") as pg:
            admin = await asyncpg.connect(pg.dsn())
            await admin.execute("CREATE DATABASE bench")
            await admin.close()
            dsn = pg.dsn("bench")
            connection = await asyncpg.connect(dsn)
            await apply_migrations(connection)
            await connection.close()
            results = []
            if args.only in (None, "throughput"):
                results.append(
                    await _scenario(
                        "throughput",
                        work=work,
                        nats_url=nats_server.url,
                        dsn=dsn,
                        emulator_args=["--rate", "0", "--paid-rate", "0", "--per-chat-rate", "0"],
                        sender_env={"HERALD_SENDER_PAID_LIMIT": "100000"},
                        n=args.recipients,
                        rate=100_000,
                        paid=True,
                        allowed=None,
                    )
                )
            # The table is reused: chats 1..n again, under a new broadcast uid.
            if args.only in (None, "rate"):
                results.append(
                    await _scenario(
                        "rate-30-at-80ms",
                        work=work,
                        nats_url=nats_server.url,
                        dsn=dsn,
                        emulator_args=["--latency-ms", "80"],
                        sender_env={},
                        n=int(30 * args.seconds),
                        rate=30,
                        paid=False,
                        allowed=30.0,
                    )
                )
    for result in results:
        print("  ".join(f"{key}={value}" for key, value in result.items()))


if __name__ == "__main__":
    asyncio.run(main())
