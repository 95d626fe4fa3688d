"""The subscriber table in Postgres (:class:`herald.bot.stores.SubscriberBook`), where every
row belongs to one bot: each statement names the bot first."""

from __future__ import annotations

import asyncpg

from herald.bot.callbacks import BroadcastRef
from herald.bot.stores import LanguageCount, SubscriberProfile

__all__ = ["PostgresSubscriberBook", "PostgresSubscribers"]


class PostgresSubscriberBook:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    def of(self, bot_id: int) -> PostgresSubscribers:
        return PostgresSubscribers(self._pool, bot_id=bot_id)


class PostgresSubscribers:
    """The subscribers of one bot."""

    def __init__(self, pool: asyncpg.Pool, *, bot_id: int) -> None:
        self._pool = pool
        # As the table keeps it: the decimal digits, like broadcasts.bot_id.
        self._bot_id = str(bot_id)

    async def subscribe(self, profile: SubscriberProfile) -> None:
        # Tags belong to the application and stay as they are; everything Telegram tells is
        # refreshed, and /start always makes the subscriber reachable again.
        await self._pool.execute(
            """
            INSERT INTO subscribers
                (bot_id, chat_id, username, first_name, last_name, language_code, is_active)
            VALUES ($6, $1, $2, $3, $4, $5, true)
            ON CONFLICT (bot_id, chat_id) DO UPDATE SET
                username = EXCLUDED.username,
                first_name = EXCLUDED.first_name,
                last_name = EXCLUDED.last_name,
                language_code = EXCLUDED.language_code,
                is_active = true,
                updated_at = now()
            """,
            *_columns(profile),
            self._bot_id,
        )

    async def refresh(self, profile: SubscriberProfile) -> None:
        # Only known rows: writing to the bot is not consent to broadcasts, /start is.
        await self._pool.execute(
            """
            UPDATE subscribers SET
                username = $2, first_name = $3, last_name = $4, language_code = $5,
                updated_at = now()
            WHERE bot_id = $6 AND chat_id = $1
              AND (username, first_name, last_name, language_code)
                  IS DISTINCT FROM ($2, $3, $4, $5)
            """,
            *_columns(profile),
            self._bot_id,
        )

    async def set_active(self, profile: SubscriberProfile, *, active: bool) -> None:
        # An upsert: a user who blocks the bot before Herald knew them is remembered as
        # inactive, so a later import cannot make them a recipient.
        await self._pool.execute(
            """
            INSERT INTO subscribers
                (bot_id, chat_id, username, first_name, last_name, language_code, is_active)
            VALUES ($7, $1, $2, $3, $4, $5, $6)
            ON CONFLICT (bot_id, chat_id) DO UPDATE SET
                is_active = EXCLUDED.is_active,
                updated_at = now()
            """,
            *_columns(profile),
            active,
            self._bot_id,
        )

    async def language_of(self, chat_id: int) -> str | None:
        value = await self._pool.fetchval(
            "SELECT language_code FROM subscribers WHERE bot_id = $1 AND chat_id = $2",
            self._bot_id,
            chat_id,
        )
        return value if isinstance(value, str) else None

    async def count_active(self) -> int:
        value = await self._pool.fetchval(
            "SELECT count(*) FROM subscribers WHERE bot_id = $1 AND is_active", self._bot_id
        )
        return int(value or 0)

    async def broadcast_of(self, uid: str) -> BroadcastRef | None:
        row = await self._pool.fetchrow(
            "SELECT namespace, name FROM broadcasts WHERE uid = $1::uuid AND bot_id = $2",
            uid,
            self._bot_id,
        )
        return None if row is None else BroadcastRef(namespace=row["namespace"], name=row["name"])

    async def record_click(
        self, *, broadcast_uid: str, chat_id: int, callback: str, tag: str | None
    ) -> bool:
        # One transaction: the tag is added exactly when the press is first recorded, and a
        # repeated press (the same row) changes nothing.
        async with self._pool.acquire() as connection, connection.transaction():
            new = await connection.fetchval(
                """
                INSERT INTO clicks (broadcast_uid, chat_id, callback) VALUES ($1::uuid, $2, $3)
                ON CONFLICT DO NOTHING RETURNING true
                """,
                broadcast_uid,
                chat_id,
                callback,
            )
            if new and tag is not None:
                await connection.execute(
                    """
                    UPDATE subscribers SET tags = array_append(tags, $3), updated_at = now()
                    WHERE bot_id = $1 AND chat_id = $2 AND NOT ($3 = ANY (tags))
                    """,
                    self._bot_id,
                    chat_id,
                    tag,
                )
        return bool(new)

    async def active_languages(self, *, limit: int) -> list[LanguageCount]:
        rows = await self._pool.fetch(
            """
            SELECT language_code, count(*) AS subscribers
            FROM subscribers
            WHERE bot_id = $1 AND is_active AND language_code IS NOT NULL
            GROUP BY language_code
            ORDER BY count(*) DESC, language_code
            LIMIT $2
            """,
            self._bot_id,
            limit,
        )
        return [
            LanguageCount(language_code=row["language_code"], subscribers=row["subscribers"])
            for row in rows
        ]


def _columns(
    profile: SubscriberProfile,
) -> tuple[int, str | None, str | None, str | None, str | None]:
    """The profile as $1..$5 of every statement above."""
    return (
        profile.chat_id,
        profile.username,
        profile.first_name,
        profile.last_name,
        profile.language_code,
    )
