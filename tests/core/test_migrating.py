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


# --- 0004: subscribers kept per bot --------------------------------------------------------

_PER_BOT = 4
# The per-bot migration and every later one, as a run from before it applies them.
_FROM_PER_BOT = [m.version for m in migrating.load_migrations() if m.version >= _PER_BOT]


async def _before_per_bot(connection: asyncpg.Connection) -> None:
    """The schema as the release before subscribers were kept per bot left it, with rows."""
    await connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    await migrating.apply_migrations(connection, through=_PER_BOT - 1)
    await connection.execute(
        "INSERT INTO subscribers (chat_id, username, language_code, tags, is_active) VALUES "
        "(1, 'a', 'en', '{beta}', true), (2, 'b', 'ru', '{}', false), (3, 'c', NULL, '{}', true)"
    )


async def _broadcast_of(connection: asyncpg.Connection, bot_id: str) -> None:
    await connection.execute(
        "INSERT INTO broadcasts (uid, namespace, name, bot_id) "
        "VALUES (gen_random_uuid(), 'ns', 'b', $1)",
        bot_id,
    )


async def _subscribers(connection: asyncpg.Connection) -> list[tuple[object, ...]]:
    rows = await connection.fetch(
        "SELECT bot_id, chat_id, username, language_code, tags, is_active "
        "FROM subscribers ORDER BY bot_id, chat_id"
    )
    return [tuple(row) for row in rows]


def _kept(bot_id: str) -> list[tuple[object, ...]]:
    return [
        (bot_id, 1, "a", "en", ["beta"], True),
        (bot_id, 2, "b", "ru", [], False),
        (bot_id, 3, "c", None, [], True),
    ]


async def test_rows_of_before_go_to_the_bot_of_every_broadcast_so_far(database: str) -> None:
    connection = await asyncpg.connect(database)
    try:
        await _before_per_bot(connection)
        await _broadcast_of(connection, "111")
        await _broadcast_of(connection, "111")
        applied = await migrating.apply_migrations(connection)
        assert [m.version for m in applied] == _FROM_PER_BOT
        assert await _subscribers(connection) == _kept("111")
        # Now a user may be the subscriber of a second bot, and only of the bot they are.
        await connection.execute("INSERT INTO subscribers (bot_id, chat_id) VALUES ('222', 1)")
        with pytest.raises(asyncpg.UniqueViolationError):
            await connection.execute("INSERT INTO subscribers (bot_id, chat_id) VALUES ('111', 1)")
        with pytest.raises(asyncpg.NotNullViolationError):
            await connection.execute("INSERT INTO subscribers (chat_id) VALUES (4)")
        with pytest.raises(asyncpg.CheckViolationError):
            await connection.execute("INSERT INTO subscribers (bot_id, chat_id) VALUES ('042', 4)")
    finally:
        await connection.close()


@pytest.mark.parametrize(
    ("bots", "why"),
    [
        pytest.param([], "no Broadcast names a bot yet", id="no-broadcast"),
        pytest.param(["222", "111"], r"several bots \(111, 222\)", id="several-bots"),
    ],
)
async def test_rows_of_an_unknown_bot_wait_for_its_id_and_nothing_changes(
    database: str, bots: list[str], why: str
) -> None:
    connection = await asyncpg.connect(database)
    try:
        await _before_per_bot(connection)
        for bot in bots:
            await _broadcast_of(connection, bot)
        with pytest.raises(migrating.MigrationError, match=why) as refused:
            await migrating.apply_migrations(connection)
        assert "herald db migrate --bot-id" in str(refused.value)
        assert "3 subscribers" in str(refused.value)
        # The refusal rolled back: the old table, whole, and 0004 still to apply.
        assert [m.version for m in await migrating.pending_migrations(connection)] == _FROM_PER_BOT
        columns = await connection.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'subscribers'"
        )
        assert "bot_id" not in {c["column_name"] for c in columns}
        assert await connection.fetchval("SELECT count(*) FROM subscribers") == 3

        await migrating.apply_migrations(connection, legacy_bot_id="333")
        assert await _subscribers(connection) == _kept("333")
    finally:
        await connection.close()


async def test_the_given_bot_id_wins_over_the_broadcasts_guess(database: str) -> None:
    connection = await asyncpg.connect(database)
    try:
        await _before_per_bot(connection)
        await _broadcast_of(connection, "111")
        await migrating.apply_migrations(connection, legacy_bot_id="222")
        assert await _subscribers(connection) == _kept("222")
    finally:
        await connection.close()


async def test_an_empty_subscriber_table_needs_no_bot_id(database: str) -> None:
    connection = await asyncpg.connect(database)
    try:
        await connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        await migrating.apply_migrations(connection, through=_PER_BOT - 1)
        await _broadcast_of(connection, "111")
        await _broadcast_of(connection, "222")
        assert [m.version for m in await migrating.apply_migrations(connection)] == _FROM_PER_BOT
    finally:
        await connection.close()


@pytest.mark.parametrize("bad", ["0", "042", "12a", "-5", "", "99999999999999999999"])
async def test_a_bot_id_that_is_none_is_refused_before_anything_runs(
    database: str, bad: str
) -> None:
    connection = await asyncpg.connect(database)
    try:
        await _before_per_bot(connection)
        with pytest.raises(migrating.MigrationError, match="is not a bot id"):
            await migrating.apply_migrations(connection, legacy_bot_id=bad)
        assert [m.version for m in await migrating.pending_migrations(connection)] == _FROM_PER_BOT
    finally:
        await connection.close()


async def test_herald_db_migrate_with_the_bot_id(database: str) -> None:
    connection = await asyncpg.connect(database)
    try:
        await _before_per_bot(connection)
        await _broadcast_of(connection, "111")
        await _broadcast_of(connection, "222")
    finally:
        await connection.close()
    refused = await asyncio.to_thread(_migrate, database)
    assert refused.returncode == 1
    assert "several bots (111, 222)" in refused.stderr
    assert "--bot-id ID" in refused.stderr
    applied = await asyncio.to_thread(_migrate, database, "--bot-id", "222")
    assert applied.returncode == 0, applied.stderr
    assert "applied: 0004_subscribers_per_bot" in applied.stdout
    again = await asyncio.to_thread(_migrate, database, "--bot-id", "222")
    assert (again.returncode, again.stdout.strip()) == (0, "applied: nothing")
    assert "--bot-id was not needed" in again.stderr
    connection = await asyncpg.connect(database)
    try:
        assert await _subscribers(connection) == _kept("222")
    finally:
        await connection.close()
