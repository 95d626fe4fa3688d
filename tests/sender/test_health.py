"""The sender's probes on real parts: live and ready, then not ready while Postgres refuses
connections, then ready again; and the vital-loop bookkeeping behind /livez."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from herald.dev.processes import free_port, http_get
from herald.sender.tasks import Vitals, spawn

Pipeline = Any  # the fixture's class lives in conftest.py


def probe(port: int, path: str) -> tuple[int, str]:
    return http_get(f"http://127.0.0.1:{port}{path}")


async def answered(port: int, path: str, status: int, *, within: float = 20) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    last: tuple[int, str] = (0, "")
    while loop.time() < deadline:
        last = await asyncio.to_thread(probe, port, path)
        if last[0] == status:
            return last[1]
        await asyncio.sleep(0.2)
    raise AssertionError(f"{path} never answered {status}: last {last}")


async def test_ready_follows_postgres_and_live_holds(pipeline: Pipeline) -> None:
    port = free_port()
    name = await pipeline.db.fetchval("SELECT current_database()")
    # A database cannot refuse connections to itself: this is done from another one.
    admin = await asyncpg.connect(pipeline.dsn, database="postgres")
    async with pipeline.sender(health_port=port):
        assert await answered(port, "/livez", 200) == "ok\n"
        assert await answered(port, "/readyz", 200) == "ok\n"
        try:
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> $2",
                name,
                pipeline.db.get_server_pid(),
            )
            body = await answered(port, "/readyz", 503)
            assert body.startswith("not ready: Postgres: "), body
            # Not ready is not dead: the kubelet must not restart a sender for an outage.
            assert await answered(port, "/livez", 200) == "ok\n"
        finally:
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            await admin.close()
        assert await answered(port, "/readyz", 200) == "ok\n"


async def test_the_first_vital_loop_to_fail_is_kept_with_its_name() -> None:
    vitals = Vitals()
    tasks: set[asyncio.Task[Any]] = set()

    async def fails() -> None:
        raise RuntimeError("boom")

    async def returns() -> None:
        return None

    async def waits() -> None:
        await asyncio.sleep(3600)

    spawn(tasks, returns(), vital=(vitals, "a loop that ends on purpose"))
    cancelled = spawn(tasks, waits(), vital=(vitals, "a loop cancelled at shutdown"))
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.gather(cancelled, return_exceptions=True)
    assert vitals.failure is None and not vitals.failed.is_set()
    spawn(tasks, fails(), vital=(vitals, "the feed"))
    spawn(tasks, fails(), vital=(vitals, "the claims"))
    await asyncio.wait_for(vitals.failed.wait(), 5)
    assert vitals.failure == "the feed failed: RuntimeError('boom')"
