"""What the sender benchmarks share: NATS and Postgres in-process, an emulator per run, one
Herald broadcast prepared as the operator would leave it, and figures read off the emulator.

Not a benchmark itself; the scripts beside it import it (a script's folder is on sys.path).
"""

from __future__ import annotations

import contextlib
import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import nats

from herald.core import streams, subjects
from herald.core.contents import Content
from herald.core.envelopes import (
    BroadcastState,
    ControlRecord,
    Recipient,
    SendRate,
    WorkBatch,
    encode,
)
from herald.core.migrating import apply_migrations
from herald.core.permissions import Component
from herald.dev import keys
from herald.dev.nats import NatsServer
from herald.dev.postgres import PostgresCluster
from herald.dev.processes import ManagedProcess, free_port, http_ok, wait_until
from herald.emulator import EmulatorClient
from herald.operator.publishing import ensure_consumer

__all__ = [
    "BENCH",
    "BIN",
    "TOKEN",
    "Infrastructure",
    "RunFigures",
    "cpu_seconds",
    "delivered",
    "emulator",
    "emulator_process",
    "figures",
    "infrastructure",
    "ledger_states",
    "prepare_broadcast",
    "sender_env",
    "unsettled",
]

TOKEN = "777000:bench-token"
BIN = Path(sys.executable).parent
BENCH = Path(__file__).resolve().parent
# Telegram's free limit and round trip, as DESIGN.md's performance targets measure them.
FREE_LIMIT = ["--rate", "30", "--per-chat-rate", "1", "--latency-ms", "80"]


@dataclass(frozen=True)
class Infrastructure:
    """The servers every system of a run shares."""

    nats: NatsServer
    postgres: PostgresCluster
    dsn: str

    @property
    def nats_url(self) -> str:
        """The admin's: the harness plays the operator."""
        return self.nats.url


@contextlib.asynccontextmanager
async def infrastructure(work: Path) -> AsyncIterator[Infrastructure]:
    """nats-server with JetStream and a Postgres cluster with Herald's schema in `bench`."""
    with NatsServer(work / "nats") as nats_server, PostgresCluster(work / "pg") as pg:
        admin = await asyncpg.connect(pg.dsn())
        await admin.execute("CREATE DATABASE bench")
        await admin.close()
        dsn = pg.dsn("bench")
        connection = await asyncpg.connect(dsn)
        await apply_migrations(connection)
        await connection.close()
        yield Infrastructure(nats=nats_server, postgres=pg, dsn=dsn)


def cpu_seconds(pid: int) -> float:
    """User and system CPU a process has spent so far, from /proc (no psutil needed, so a
    baseline venv without the bench extra runs these scripts too)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    # utime and stime are fields 14 and 15 of stat(5), the 12th and 13th after the name.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def emulator(work: Path, name: str, args: list[str]) -> Iterator[str]:
    """A fresh emulator (empty record) for one run; yields its base URL."""
    with emulator_process(work, name, args) as (url, _):
        yield url


@contextlib.contextmanager
def emulator_process(
    work: Path, name: str, args: list[str]
) -> Iterator[tuple[str, ManagedProcess]]:
    """A fresh emulator (empty record) for one run; yields its base URL and its process."""
    port = free_port()
    process = ManagedProcess(
        "emulator",
        [str(BIN / "herald-emulator"), "--port", str(port), *args],
        work / f"{name}-emulator.log",
    ).start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: http_ok(f"{url}/_emulator/config"), timeout=20, what="emulator", process=process
        )
        yield url, process
    finally:
        process.stop()


async def prepare_broadcast(
    infra: Infrastructure, chat_ids: range, *, rate: float, paid: bool
) -> str:
    """Ledger rows, work batches of 100 and the control record of one active broadcast, as
    the operator leaves them; returns the broadcast's uid."""
    uid = str(uuid.uuid4())
    db = await asyncpg.connect(infra.dsn)
    try:
        await db.execute(
            "INSERT INTO subscribers (bot_id, chat_id, first_name) "
            "SELECT $3, g, 'User' || g FROM generate_series($1::bigint, $2::bigint) g "
            "ON CONFLICT DO NOTHING",
            chat_ids.start,
            chat_ids.stop - 1,
            TOKEN.partition(":")[0],
        )
        await db.execute(
            "INSERT INTO deliveries (broadcast_uid, chat_id) "
            "SELECT $1, g FROM generate_series($2::bigint, $3::bigint) g",
            uuid.UUID(uid),
            chat_ids.start,
            chat_ids.stop - 1,
        )
    finally:
        await db.close()
    client = await nats.connect(infra.nats_url)
    try:
        js = client.jetstream()
        await streams.ensure_work_stream(js)
        kv = await streams.ensure_control_bucket(js)
        await ensure_consumer(js, uid)
        for start in range(0, len(chat_ids), 100):
            batch = WorkBatch(
                uid=uid,
                recipients=[Recipient(c, None, f"User{c}") for c in chat_ids[start : start + 100]],
            )
            await js.publish(
                subjects.work_subject(uid), encode(batch), headers={"Nats-Msg-Id": batch.msg_id(0)}
            )
        record = ControlRecord(
            uid=uid,
            namespace="bench",
            name="bench",
            generation=1,
            bot_id=TOKEN.partition(":")[0],
            token=keys.seal(TOKEN, bound_to=uid),
            content=Content(text="Hello <b>{first_name}</b>"),
            rate=SendRate(messages_per_second=rate, allow_paid_broadcast=paid),
            state=BroadcastState.ACTIVE,
        )
        await kv.put(subjects.control_key(uid), encode(record))
    finally:
        await client.close()
    return uid


def sender_env(infra: Infrastructure, api_url: str, **extra: str) -> dict[str, str]:
    """The environment of a herald-sender process pointed at this run's servers."""
    return {
        **os.environ,
        **infra.nats.credentials(Component.SENDER),
        "HERALD_DATABASE_URL": infra.dsn,
        "HERALD_TELEGRAM_API_URL": api_url,
        "HERALD_TOKEN_KEYS": keys.token_keys(),
        "HERALD_SENDER_METRICS_PORT": "0",
        "HERALD_SENDER_HEALTH_PORT": "0",
        **extra,
    }


async def _count(dsn: str, uid: str, states: tuple[str, ...]) -> int:
    db = await asyncpg.connect(dsn)
    try:
        value = await db.fetchval(
            "SELECT count(*) FROM deliveries WHERE broadcast_uid = $1 AND state = ANY($2)",
            uuid.UUID(uid),
            list(states),
        )
        return int(value)
    finally:
        await db.close()


async def ledger_states(dsn: str, uid: str) -> dict[str, int]:
    """Ledger rows of the broadcast per state."""
    db = await asyncpg.connect(dsn)
    try:
        rows = await db.fetch(
            "SELECT state, count(*) AS n FROM deliveries WHERE broadcast_uid = $1 GROUP BY state",
            uuid.UUID(uid),
        )
        return {row["state"]: int(row["n"]) for row in rows}
    finally:
        await db.close()


async def delivered(dsn: str, uid: str) -> int:
    return await _count(dsn, uid, ("delivered",))


async def unsettled(dsn: str, uid: str) -> int:
    """Ledger rows not yet terminal: the broadcast is done when this reaches zero."""
    return await _count(dsn, uid, ("pending", "claimed"))


@dataclass(frozen=True)
class RunFigures:
    """What the emulator saw of one run, for one bot token."""

    messages: int
    chats: int
    seconds: float
    msg_per_s: float
    max_in_any_second: int
    too_many_requests: int
    chats_messaged_twice: int


async def figures(api_url: str) -> RunFigures:
    """Steady rate from the first accepted send to the last: (n - 1) intervals."""
    async with EmulatorClient(api_url) as client:
        summary = await client.summary(token=TOKEN)
        times = sorted(m.monotonic for m in await client.messages(token=TOKEN) if m.sending)
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    return RunFigures(
        messages=summary.total,
        chats=len(summary.per_chat),
        seconds=round(span, 2),
        msg_per_s=(len(times) - 1) / span if span > 0 else float("nan"),
        max_in_any_second=summary.max_per_second.get(TOKEN, 0),
        too_many_requests=summary.too_many_requests.get(TOKEN, 0),
        chats_messaged_twice=len(summary.duplicates.get(TOKEN, {})),
    )
