"""Loading subscribers into Postgres in one transaction: all rows or none."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from herald.core.subscribers import Subscriber

__all__ = ["import_subscribers"]


async def import_subscribers(connection: asyncpg.Connection, rows: Sequence[Subscriber]) -> int:
    """Upsert ``rows``; return how many there were. Profile fields are refreshed, but
    ``is_active`` of a known subscriber is kept: a user who blocked the bot stays excluded
    even when an old export lists them again."""
    async with connection.transaction():
        await connection.execute(
            "CREATE TEMPORARY TABLE subscribers_import "
            "(LIKE subscribers INCLUDING DEFAULTS) ON COMMIT DROP"
        )
        await connection.copy_records_to_table(
            "subscribers_import",
            records=[
                (r.chat_id, r.username, r.first_name, r.last_name, r.language_code, list(r.tags))
                for r in rows
            ],
            columns=["chat_id", "username", "first_name", "last_name", "language_code", "tags"],
        )
        await connection.execute(
            """
            INSERT INTO subscribers (chat_id, username, first_name, last_name, language_code, tags)
            SELECT chat_id, username, first_name, last_name, language_code, tags
            FROM subscribers_import
            ON CONFLICT (chat_id) DO UPDATE SET
                username = EXCLUDED.username,
                first_name = EXCLUDED.first_name,
                last_name = EXCLUDED.last_name,
                language_code = EXCLUDED.language_code,
                tags = EXCLUDED.tags,
                updated_at = now()
            """
        )
    return len(rows)
