"""Benchmark: removing an old ledger in batches while a "sender" keeps writing another
broadcast's rows, and erasing one chat from a large ledger. Not a test; prints figures.

    .venv/bin/python bench/ledger_retention.py                      # 1M rows, batch 5000
    .venv/bin/python bench/ledger_retention.py --rows 200000 --batches 1000 5000 20000

Real and local: a throwaway PostgreSQL cluster. For each batch size a finished broadcast of
``--rows`` recipients (two days old) is removed by the operator's own retention code with a
retention of one day, while a concurrent writer updates rows of a running broadcast one at a
time, as a sender records outcomes; the figures are the removal's wall time, its slowest
statement, and the writer's slowest update (what a sender would wait behind the removal).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import asyncpg

from herald.core.forgetting import forget_chat
from herald.core.migrating import apply_migrations
from herald.dev.postgres import PostgresCluster
from herald.operator import retaining

BOT = "123456"
_COUNTING = "keeping a ledger's counts"


async def seed(db: asyncpg.Connection, rows: int) -> tuple[str, str]:
    """A finished broadcast two days old and a running one, ``rows`` recipients each."""
    done, running = str(uuid.uuid4()), str(uuid.uuid4())
    for uid, completed in ((done, "now() - interval '2 days'"), (running, "NULL")):
        await db.execute(
            "INSERT INTO broadcasts (uid, namespace, name, bot_id, total, materialised_at, "
            f"completed_at, created_at) VALUES ($1::uuid, 'bench', $1, $2, $3, now(), {completed}, "
            "now() - interval '3 days')",
            uid,
            BOT,
            rows,
        )
        state = "delivered" if uid == done else "pending"
        await db.execute(
            "INSERT INTO deliveries (broadcast_uid, chat_id, state, created_at, finished_at) "
            "SELECT $1, g, $2, now() - interval '3 days', now() - interval '2 days' "
            "FROM generate_series(1, $3::bigint) g",
            uid,
            state,
            rows,
        )
    await db.execute("ANALYZE deliveries")
    return done, running


class Timed:
    """Each statement's duration, through the retention's step hook."""

    def __init__(self) -> None:
        self.slowest: dict[str, float] = {}
        self.statements = 0

    @contextlib.asynccontextmanager
    async def _timed(self, what: str) -> AsyncIterator[None]:
        started = time.perf_counter()
        yield
        took = time.perf_counter() - started
        self.slowest[what] = max(self.slowest.get(what, 0.0), took)
        self.statements += 1

    def __call__(self, what: str) -> AbstractAsyncContextManager[None]:
        return self._timed(what)


async def writer(dsn: str, running: str, rows: int, stop: asyncio.Event) -> tuple[int, float]:
    """Record outcomes of the running broadcast one row at a time; (updates, slowest)."""
    db = await asyncpg.connect(dsn)
    slowest, n = 0.0, 0
    try:
        while not stop.is_set():
            started = time.perf_counter()
            await db.execute(
                "UPDATE deliveries SET state = 'delivered', finished_at = now() "
                "WHERE broadcast_uid = $1 AND chat_id = $2",
                running,
                1 + n % rows,
            )
            slowest = max(slowest, time.perf_counter() - started)
            n += 1
    finally:
        await db.close()
    return n, slowest


async def one(cluster: PostgresCluster, *, rows: int, batch: int) -> None:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(cluster.dsn())
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = cluster.dsn(name)
    db = await asyncpg.connect(dsn)
    try:
        await apply_migrations(db)
        _, running = await seed(db, rows)
        stop = asyncio.Event()
        writing = asyncio.create_task(writer(dsn, running, rows, stop))
        timed = Timed()
        started = time.perf_counter()
        removed = await retaining.remove_expired(
            db,
            now=await db.fetchval("SELECT now()"),
            days=1,
            batch=batch,
            live_uids={running},
            step=timed,
        )
        took = time.perf_counter() - started
        stop.set()
        updates, slowest_update = await writing
        assert removed.deliveries == rows, removed
        print(
            f"rows={rows:>9,} batch={batch:>6,}: removed in {took:6.2f} s "
            f"({rows / took:,.0f} rows/s, {timed.statements} statements; slowest batch "
            f"{timed.slowest['removing a batch of expired ledger rows'] * 1000:.0f} ms, "
            f"counting {timed.slowest[_COUNTING] * 1000:.0f} ms); "
            f"concurrent writer: {updates:,} updates, "
            f"slowest {slowest_update * 1000:.1f} ms"
        )
        started = time.perf_counter()
        gone = await forget_chat(db, bot_id=BOT, chat_id=rows // 2)
        print(
            f"  forget one chat in {rows:,}-row ledgers: {gone.deliveries} row(s) in "
            f"{(time.perf_counter() - started) * 1000:.1f} ms"
        )
    finally:
        await db.close()
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batches", type=int, nargs="+", default=[5000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, PostgresCluster(Path(tmp)) as cluster:
        for batch in args.batches:
            await one(cluster, rows=args.rows, batch=batch)


if __name__ == "__main__":
    asyncio.run(main())
