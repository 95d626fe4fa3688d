"""The migration runner: idempotent, safe under concurrency, strict about history."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from herald.core import migrating


def test_shipped_migrations_are_numbered_without_gaps() -> None:
    versions = [m.version for m in migrating.load_migrations()]
    assert versions == list(range(1, len(versions) + 1))


async def test_reapplying_is_a_no_op(database: str) -> None:
    connection = await asyncpg.connect(database)
    try:
        assert await migrating.apply_migrations(connection) == []
        count = await connection.fetchval("SELECT count(*) FROM herald_schema_migrations")
        assert count == len(migrating.load_migrations())
    finally:
        await connection.close()


async def test_concurrent_migrators_apply_each_migration_once(database: str) -> None:
    connection = await asyncpg.connect(database)
    try:
        await connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await connection.close()

    async def run() -> int:
        connection = await asyncpg.connect(database)
        try:
            return len(await migrating.apply_migrations(connection))
        finally:
            await connection.close()

    applied = await asyncio.gather(*(run() for _ in range(4)))
    assert sorted(applied) == [0, 0, 0, len(migrating.load_migrations())]


async def test_an_edited_migration_is_refused(database: str) -> None:
    connection = await asyncpg.connect(database)
    try:
        await connection.execute("UPDATE herald_schema_migrations SET checksum = 'x'")
        with pytest.raises(migrating.MigrationError, match="edited after it was applied"):
            await migrating.apply_migrations(connection)
    finally:
        await connection.close()


async def test_a_newer_schema_is_refused(database: str) -> None:
    connection = await asyncpg.connect(database)
    try:
        await connection.execute(
            "INSERT INTO herald_schema_migrations (version, name, checksum) VALUES (99, 'x', 'y')"
        )
        with pytest.raises(migrating.MigrationError, match="newer version"):
            await migrating.apply_migrations(connection)
    finally:
        await connection.close()


async def test_ledger_states_are_checked(database: str) -> None:
    connection = await asyncpg.connect(database)
    try:
        with pytest.raises(asyncpg.CheckViolationError):
            await connection.execute(
                "INSERT INTO deliveries (broadcast_uid, chat_id, state) "
                "VALUES (gen_random_uuid(), 1, 'sent-twice')"
            )
    finally:
        await connection.close()
