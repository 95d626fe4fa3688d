"""Loading subscribers into Postgres in one transaction: all rows or none, for one bot."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from herald.core.subscribers import BOT_ID_FORM, Subscriber, is_bot_id

__all__ = [
    "BotChoiceError",
    "BotName",
    "import_subscribers",
    "known_bot_ids",
    "only_bot",
    "parse_bot",
]


async def import_subscribers(
    connection: asyncpg.Connection, rows: Sequence[Subscriber], *, bot_id: str
) -> int:
    """Upsert ``rows`` as subscribers of the bot ``bot_id``; return how many there were.
    Profile fields are refreshed, but ``is_active`` of a known subscriber is kept: a user who
    blocked the bot stays excluded even when an old export lists them again. Other bots'
    subscribers, the same users among them, are left as they are."""
    if not is_bot_id(bot_id):
        raise ValueError(f"{bot_id!r} is not a bot id: {BOT_ID_FORM}")
    async with connection.transaction():
        await connection.execute(
            "CREATE TEMPORARY TABLE subscribers_import "
            "(LIKE subscribers INCLUDING DEFAULTS) ON COMMIT DROP"
        )
        await connection.copy_records_to_table(
            "subscribers_import",
            records=[
                (
                    bot_id,
                    r.chat_id,
                    r.username,
                    r.first_name,
                    r.last_name,
                    r.language_code,
                    list(r.tags),
                )
                for r in rows
            ],
            columns=[
                "bot_id",
                "chat_id",
                "username",
                "first_name",
                "last_name",
                "language_code",
                "tags",
            ],
        )
        await connection.execute(
            """
            INSERT INTO subscribers
                (bot_id, chat_id, username, first_name, last_name, language_code, tags)
            SELECT bot_id, chat_id, username, first_name, last_name, language_code, tags
            FROM subscribers_import
            ON CONFLICT (bot_id, chat_id) DO UPDATE SET
                username = EXCLUDED.username,
                first_name = EXCLUDED.first_name,
                last_name = EXCLUDED.last_name,
                language_code = EXCLUDED.language_code,
                tags = EXCLUDED.tags,
                updated_at = now()
            """
        )
    return len(rows)


# The bots of the subscriber table without reading each of its rows: one probe of the primary
# key per bot, each for the smallest bot id above the last (Postgres has no skip scan).
_KNOWN_BOTS = """
WITH RECURSIVE bots(bot_id) AS (
    SELECT min(bot_id) FROM subscribers
    UNION ALL
    SELECT (SELECT min(s.bot_id) FROM subscribers s WHERE s.bot_id > bots.bot_id)
    FROM bots WHERE bots.bot_id IS NOT NULL
)
SELECT bot_id FROM bots WHERE bot_id IS NOT NULL
UNION
SELECT bot_id FROM broadcasts
ORDER BY 1
"""


async def known_bot_ids(connection: asyncpg.Connection) -> list[str]:
    """Every bot the database knows of, by id: those with subscribers or Broadcasts."""
    return [str(row["bot_id"]) for row in await connection.fetch(_KNOWN_BOTS)]


@dataclass(frozen=True)
class BotName:
    """A Bot resource, by name; ``namespace`` None: the current one."""

    namespace: str | None
    name: str


class BotChoiceError(ValueError):
    """Which bot's subscribers to import cannot be told; the message says what to pass."""


def parse_bot(value: str) -> str | BotName:
    """``--bot`` as given: digits are a bot id, ``NAMESPACE/NAME`` and ``NAME`` a Bot."""
    value = value.strip()
    if value.isdigit():
        if not is_bot_id(value):
            raise BotChoiceError(f"{value!r} is not a bot id: {BOT_ID_FORM}")
        return value
    namespace, slash, name = value.rpartition("/")
    if not name or (slash and not namespace) or "/" in namespace:
        raise BotChoiceError(
            f"{value!r} names no bot: give a Bot's NAME, NAMESPACE/NAME or a numeric bot id"
        )
    return BotName(namespace or None, name)


def only_bot(known: Sequence[str]) -> str:
    """The one bot of ``known`` (:func:`known_bot_ids`), else why there is no one."""
    if len(known) == 1:
        return known[0]
    if not known:
        raise BotChoiceError(
            "the database knows no bot yet (no subscribers, no Broadcasts): "
            "say whose subscribers these are with --bot NAME or --bot ID"
        )
    raise BotChoiceError(
        f"the database knows several bots ({', '.join(known)}): "
        "say whose subscribers these are with --bot NAME or --bot ID"
    )
