"""The session's NATS and Postgres are the real servers, ready for what Herald asks of them."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import asyncpg
import nats
import pytest
from nats.js.api import StreamConfig

from herald.dev.nats import NatsServer
from herald.dev.postgres import PostgresCluster


async def test_nats_has_jetstream_with_deduplication(nats_server: NatsServer) -> None:
    client = await nats.connect(nats_server.url)
    try:
        js = client.jetstream()
        stream = f"T{uuid.uuid4().hex[:8]}"
        await js.add_stream(StreamConfig(name=stream, subjects=[f"{stream}.>"]))
        first = await js.publish(f"{stream}.work", b"x", headers={"Nats-Msg-Id": "one"})
        again = await js.publish(f"{stream}.work", b"x", headers={"Nats-Msg-Id": "one"})
        assert not first.duplicate
        assert again.duplicate
        info = await js.stream_info(stream)
        assert info.state.messages == 1
        await js.delete_stream(stream)
    finally:
        await client.close()


async def test_each_test_gets_a_fresh_migrated_database(database: str) -> None:
    connection = await asyncpg.connect(database)
    try:
        tables = {
            row["tablename"]
            for row in await connection.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            )
        }
        assert {"subscribers", "deliveries", "herald_schema_migrations"} <= tables
        assert await connection.fetchval("SELECT count(*) FROM subscribers") == 0
    finally:
        await connection.close()


def test_postgres_stops_cleanly(tmp_path: Path) -> None:
    with PostgresCluster(tmp_path) as cluster:
        assert cluster.process is not None
        pid = cluster.process.pid

        async def ping() -> int:
            connection = await asyncpg.connect(cluster.dsn())
            try:
                value: int = await connection.fetchval("SELECT 1")
                return value
            finally:
                await connection.close()

        assert asyncio.run(ping()) == 1
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
