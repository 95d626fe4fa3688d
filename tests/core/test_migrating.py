"""The migration runner: idempotent, safe under concurrency, strict about history."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

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


async def test_without_migrate_an_old_schema_is_refused_and_left_alone(database: str) -> None:
    connection = await asyncpg.connect(database)
    try:
        await connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        shipped = migrating.load_migrations()
        assert await migrating.pending_migrations(connection) == shipped
        with pytest.raises(migrating.MigrationError, match="herald db migrate"):
            await migrating.ensure_schema(connection, migrate=False)
        assert await connection.fetchval("SELECT to_regclass('deliveries')") is None
        assert await migrating.ensure_schema(connection, migrate=True) == shipped
        assert await migrating.ensure_schema(connection, migrate=False) == []
    finally:
        await connection.close()


def _migrate(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "herald.dev.cli", "db", "migrate", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "HERALD_DATABASE_URL": dsn},
        timeout=60,
        check=False,
    )


async def test_herald_db_migrate(database: str) -> None:
    connection = await asyncpg.connect(database)
    try:
        await connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await connection.close()
    first = migrating.load_migrations()[0]
    behind = await asyncio.to_thread(_migrate, database, "--check")
    assert behind.returncode == 1
    assert f"pending: {first.version:04d}_{first.name}" in behind.stdout
    applied = await asyncio.to_thread(_migrate, database)
    assert applied.returncode == 0, applied.stderr
    assert f"applied: {first.version:04d}_{first.name}" in applied.stdout
    current = await asyncio.to_thread(_migrate, database, "--check")
    assert (current.returncode, current.stdout.strip()) == (0, "pending: nothing")
