"""Schema migrations: versioned SQL files applied in order, once, under an advisory lock.

One runner serves tests, ``herald dev`` and production start-up. It is small on purpose:
the migration libraries that take plain SQL files (yoyo, alembic without autogenerate) drive
Postgres through a synchronous driver or SQLAlchemy, a second database stack in every image
for a job of thirty lines on the asyncpg pool Herald already has.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from herald.core import subscribers

__all__ = [
    "Migration",
    "MigrationError",
    "apply_migrations",
    "check_bot_id",
    "ensure_schema",
    "load_migrations",
    "pending_migrations",
]

# An arbitrary constant shared by every Herald process: the lock that serialises migrators.
_LOCK_KEY = 0x4E52414C44  # "HERALD"-ish; any fixed bigint works
_FILE_NAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")


class MigrationError(RuntimeError):
    """The database's schema history disagrees with the migration files."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations() -> list[Migration]:
    """The migration files shipped in ``herald.core.migrations``, in version order."""
    found: list[Migration] = []
    for entry in resources.files("herald.core").joinpath("migrations").iterdir():
        match = _FILE_NAME.match(entry.name)
        if match is None:
            continue
        found.append(
            Migration(int(match["version"]), match["name"], entry.read_text(encoding="utf-8"))
        )
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise MigrationError(f"migration versions must be 1..N without gaps, found {versions}")
    return found


_HISTORY_TABLE = """
CREATE TABLE IF NOT EXISTS herald_schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


async def _pending(
    connection: asyncpg.Connection, migrations: list[Migration], *, through: int | None = None
) -> list[Migration]:
    """The migrations the database lacks; an error when its history disagrees with ours.
    ``through``: ``migrations`` stop at that version, so later ones may be applied."""
    exists = await connection.fetchval("SELECT to_regclass('herald_schema_migrations') IS NOT NULL")
    rows = (
        await connection.fetch("SELECT version, checksum FROM herald_schema_migrations")
        if exists
        else []
    )
    applied = {row["version"]: row["checksum"] for row in rows}
    pending: list[Migration] = []
    for migration in migrations:
        recorded = applied.pop(migration.version, None)
        if recorded is None:
            pending.append(migration)
        elif recorded != migration.checksum:
            raise MigrationError(
                f"migration {migration.version:04d}_{migration.name} was edited after it "
                "was applied; add a new migration instead"
            )
    if applied and (through is None or min(applied) <= through):
        raise MigrationError(
            f"the database has migrations this Herald does not know: {sorted(applied)}; "
            "it was migrated by a newer version"
        )
    return pending


async def pending_migrations(connection: asyncpg.Connection) -> list[Migration]:
    """What `apply_migrations` would apply now; changes nothing."""
    return await _pending(connection, load_migrations())


def check_bot_id(bot_id: str) -> str:
    """``bot_id`` if it is a bot id as the schema stores it, else :class:`MigrationError`."""
    if not subscribers.is_bot_id(bot_id):
        raise MigrationError(f"{bot_id!r} is not a bot id: {subscribers.BOT_ID_FORM}")
    return bot_id


async def apply_migrations(
    connection: asyncpg.Connection,
    *,
    legacy_bot_id: str | None = None,
    through: int | None = None,
) -> list[Migration]:
    """Apply the pending migrations (up to version ``through``, all when None); return those
    applied now. Safe to run concurrently.

    ``legacy_bot_id`` is the bot the subscribers recorded before subscribers were kept per
    bot belong to; only 0004 reads it, and only when it cannot tell the bot itself. A
    migration that refuses raises :class:`MigrationError` with its reason, having changed
    nothing."""
    if legacy_bot_id is not None:
        check_bot_id(legacy_bot_id)
    migrations = [m for m in load_migrations() if through is None or m.version <= through]
    await connection.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await connection.execute(_HISTORY_TABLE)
        pending = await _pending(connection, migrations, through=through)
        for migration in pending:
            async with connection.transaction():
                # Local to the transaction: the setting never outlives the migration.
                await connection.execute(
                    "SELECT set_config('herald.legacy_bot_id', $1, true)", legacy_bot_id or ""
                )
                try:
                    await connection.execute(migration.sql)
                except asyncpg.RaiseError as exc:
                    # A migration's own refusal: its words, and what to do, for a person.
                    hint = f"; {exc.hint}" if exc.hint else ""
                    raise MigrationError(
                        f"migration {migration.version:04d}_{migration.name} refused: "
                        f"{exc.message}{hint}"
                    ) from exc
                await connection.execute(
                    "INSERT INTO herald_schema_migrations (version, name, checksum) "
                    "VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
        return pending
    finally:
        await connection.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)


async def ensure_schema(
    connection: asyncpg.Connection, *, migrate: bool, legacy_bot_id: str | None = None
) -> list[Migration]:
    """At a component's start: migrate (when allowed), else refuse to run on an old schema."""
    if migrate:
        return await apply_migrations(connection, legacy_bot_id=legacy_bot_id)
    pending = await pending_migrations(connection)
    if pending:
        names = ", ".join(f"{m.version:04d}_{m.name}" for m in pending)
        raise MigrationError(
            f"the database schema lacks {names}; run `herald db migrate` "
            "(or set HERALD_DATABASE_MIGRATE=true)"
        )
    return []
