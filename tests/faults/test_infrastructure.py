"""NATS and Postgres restarted in the middle of a 5,000-recipient broadcast. Each test runs
its own server, on the same port and with the same store across the restart: stopping the
session's would break every other test."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from faults import checks
from herald.core.migrating import apply_migrations
from herald.dev import processes
from herald.dev.controlplane import ControlPlane
from herald.dev.kubectl import Kubectl
from herald.dev.nats import NatsAccess, NatsServer
from herald.dev.postgres import PostgresCluster

AUDIENCE = 5_000
BATCHES = 50
DOWN_SECONDS = 2.0


@pytest.fixture
def own_nats(tmp_path: Path) -> Iterator[NatsServer]:
    with NatsServer(tmp_path / "nats") as server:
        yield server
    refused = server.violations()
    assert not refused, "NATS refused a component:\n" + "\n".join(refused)


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[PostgresCluster]:
    with PostgresCluster(tmp_path / "postgres") as cluster:
        yield cluster


@pytest.fixture
async def own_database(own_postgres: PostgresCluster) -> AsyncIterator[str]:
    admin = await asyncpg.connect(own_postgres.dsn())
    try:
        await admin.execute('CREATE DATABASE "herald"')
    finally:
        await admin.close()
    connection = await asyncpg.connect(own_postgres.dsn("herald"))
    try:
        await apply_migrations(connection)
    finally:
        await connection.close()
    yield own_postgres.dsn("herald")


async def restart_nats(server: NatsServer) -> None:
    """Stop the server, leave it down a while, start it on the same port and store."""
    await asyncio.to_thread(server.stop)
    await asyncio.sleep(DOWN_SECONDS)
    await asyncio.to_thread(server.start)


async def restart_postgres(cluster: PostgresCluster) -> None:
    """A fast shutdown (SIGINT: sessions are cut, work in progress rolled back), a while
    down, then the same data directory served again on the same port."""
    old = cluster.process
    assert old is not None
    os.kill(old.pid, signal.SIGINT)
    await asyncio.to_thread(
        processes.wait_until, lambda: not old.alive, timeout=30, what="postgres to stop"
    )
    await asyncio.sleep(DOWN_SECONDS)
    new = processes.ManagedProcess(
        name=old.name, argv=list(old.argv), log_path=old.log_path, user=old.user
    ).start()
    cluster.process = new
    ready = [str(cluster.bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(cluster.port)]
    await asyncio.to_thread(
        processes.wait_until,
        lambda: subprocess.run(ready, check=False).returncode == 0,
        timeout=60,
        what="postgres to start again",
        process=new,
    )


async def test_nats_restart_mid_broadcast(
    controlplane: ControlPlane,
    kubectl: Kubectl,
    database: str,
    own_nats: NatsServer,
    tmp_path: Path,
) -> None:
    async with checks.system(
        controlplane,
        kubectl,
        database=database,
        nats_access=own_nats.access,
        logs=tmp_path / "logs",
    ) as herald:
        await checks.seed(herald, AUDIENCE)
        checks.apply_paid(herald, "through-nats", paused=True)
        uid = await checks.wait_published(herald, "through-nats", BATCHES)
        await checks.shorten_ack_wait(herald, uid)
        herald.kubectl(
            "patch", "bc", "through-nats", "--type=merge", "-p", '{"spec":{"paused":false}}'
        )
        await checks.wait_delivered(herald, 1_500)
        await restart_nats(own_nats)
        checked = await checks.verify(
            herald, "through-nats", uncertain_at_most=checks.MAX_IN_FLIGHT
        )
    assert checked.ledger["delivered"] + checked.ledger["uncertain"] == AUDIENCE


async def test_postgres_restart_mid_broadcast(
    controlplane: ControlPlane,
    kubectl: Kubectl,
    own_postgres: PostgresCluster,
    own_database: str,
    nats_access: NatsAccess,
    tmp_path: Path,
) -> None:
    async with checks.system(
        controlplane,
        kubectl,
        database=own_database,
        nats_access=nats_access,
        logs=tmp_path / "logs",
    ) as herald:
        await checks.seed(herald, AUDIENCE)
        checks.apply_paid(herald, "through-postgres")
        await checks.wait_delivered(herald, 1_500)
        await restart_postgres(own_postgres)
        checked = await checks.verify(
            herald, "through-postgres", uncertain_at_most=checks.MAX_IN_FLIGHT
        )
    assert checked.ledger["delivered"] + checked.ledger["uncertain"] == AUDIENCE


async def test_postgres_connections_killed_mid_claim(
    controlplane: ControlPlane,
    kubectl: Kubectl,
    database: str,
    nats_access: NatsAccess,
    tmp_path: Path,
) -> None:
    """Every Herald connection to the database cut, three times while claims go on at the
    paid rate (the ledger sees a claim about every 0.1 s), the server itself up throughout."""
    async with checks.system(
        controlplane,
        kubectl,
        database=database,
        nats_access=nats_access,
        logs=tmp_path / "logs",
    ) as herald:
        await checks.seed(herald, AUDIENCE)
        checks.apply_paid(herald, "connections-cut")
        cut = 0
        for delivered in (1_000, 2_000, 3_000):
            await checks.wait_delivered(herald, delivered)
            rows = await herald.sql(
                "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            cut += rows[0]["n"]
        checked = await checks.verify(
            herald, "connections-cut", uncertain_at_most=3 * checks.MAX_IN_FLIGHT
        )
    assert cut >= 3, "no Herald connection was there to cut"
    assert checked.ledger["delivered"] + checked.ledger["uncertain"] == AUDIENCE
