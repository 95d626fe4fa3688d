"""Materialising a Broadcast's audience into the delivery ledger: one bulk statement.

The union of the selectors is computed by Postgres and inserted in the same statement
(``INSERT ... SELECT ... ON CONFLICT DO NOTHING``), so a million recipients cost one round
trip, never a row in Python. The bookkeeping row records the total in the same transaction,
so a crash leaves either no audience or all of it, and a retry is a no-op.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from herald.core.audiences import Audience

__all__ = [
    "Connection",
    "audience_query",
    "count_languages",
    "materialise",
    "segment_exists",
    "segment_has_bot_id",
]

# A connection of its own or one borrowed from a pool: both run queries the same way.
Connection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy


def _quote_identifier(name: str) -> str:
    # The CRD's pattern already limits segment names to [a-z0-9_-]; quoting is the belt.
    return '"' + name.replace('"', '""') + '"'


def audience_query(
    audience: Audience,
    *,
    bot_id: str,
    segment_has_bot_id: bool = False,
    source_uid: str | None = None,
) -> tuple[str, list[Any]]:
    """The SELECT of the audience's chat ids for the bot ``bot_id`` (deduplicated, who is
    inactive for that bot excluded) and its parameters, starting at ``$2`` (``$1`` is the
    broadcast uid in the INSERT).

    Subscribers are the bot's own. A segment view with a ``bot_id`` column
    (``segment_has_bot_id``) serves several bots and gives its rows of this bot; a view of
    ``chat_id`` alone is the list of whichever bot names it, as chatIds are.
    ``fromBroadcast`` reads the ledger of the Broadcast ``source_uid`` (resolved from its name
    by the caller), of the same bot, keeping chats that are still active subscribers.

    Only fixed SQL and a quoted, pattern-checked view name are formatted into the text;
    every value travels as a parameter (hence the S608 waivers below)."""
    parts: list[str] = []
    params: list[Any] = [bot_id]
    bot = "$2"
    selector = audience.subscribers
    if selector is not None:
        where = [f"bot_id = {bot}", "is_active"]
        if selector.languages:
            params.append(list(selector.languages))
            n = len(params) + 1
            # "en" selects "en" and "en-us" alike, as the CRD promises.
            where.append(
                f"(lower(language_code) = ANY(${n}::text[]) "
                f"OR split_part(lower(language_code), '-', 1) = ANY(${n}::text[]))"
            )
        if selector.tags:
            params.append(list(selector.tags))
            where.append(f"tags && ${len(params) + 1}::text[]")
        parts.append(f"SELECT chat_id FROM subscribers WHERE {' AND '.join(where)}")  # noqa: S608
    view = audience.segment_view
    if view is not None:
        # The view's bot_id may be any type (text, bigint): compared as its digits.
        of_bot = f" WHERE bot_id::text = {bot}" if segment_has_bot_id else ""
        parts.append(f"SELECT chat_id::bigint FROM {_quote_identifier(view)}{of_bot}")  # noqa: S608
    if audience.chat_ids:
        params.append(list(audience.chat_ids))
        parts.append(f"SELECT unnest(${len(params) + 1}::bigint[])")
    source = audience.from_broadcast
    if source is not None:
        if source_uid is None:
            raise ValueError("fromBroadcast needs the uid of the Broadcast it names")
        params.extend([source_uid, list(source.states)])
        n = len(params) + 1
        # The bot of the source's ledger row is checked again here, so another bot's
        # recipients can never be selected, whatever the caller resolved.
        parts.append(
            "SELECT d.chat_id FROM deliveries d "  # noqa: S608
            f"JOIN broadcasts b ON b.uid = d.broadcast_uid AND b.bot_id = {bot} "
            f"JOIN subscribers s ON s.bot_id = {bot} AND s.chat_id = d.chat_id AND s.is_active "
            f"WHERE d.broadcast_uid = ${n - 1}::uuid AND d.state = ANY(${n}::text[])"
        )
    union = " UNION ".join(parts)  # UNION, not UNION ALL: the deduplication
    query = (
        f"SELECT a.chat_id FROM ({union}) AS a(chat_id) "  # noqa: S608
        "WHERE a.chat_id IS NOT NULL AND NOT EXISTS ("
        f"SELECT 1 FROM subscribers s WHERE s.bot_id = {bot} AND s.chat_id = a.chat_id "
        "AND NOT s.is_active)"
    )
    return query, params


async def segment_exists(connection: Connection | asyncpg.Pool, audience: Audience) -> bool:
    """Whether the audience's segment view exists; True when it names none."""
    view = audience.segment_view
    if view is None:
        return True
    found = await connection.fetchval("SELECT to_regclass($1) IS NOT NULL", _quote_identifier(view))
    return bool(found)


async def segment_has_bot_id(connection: Connection, audience: Audience) -> bool:
    """Whether the audience's segment view has a ``bot_id`` column (False: it names none,
    or it is a view of ``chat_id`` alone, as segments were before bots had their own)."""
    view = audience.segment_view
    if view is None:
        return False
    found = await connection.fetchval(
        "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($1) "
        "AND attname = 'bot_id' AND attnum > 0 AND NOT attisdropped)",
        _quote_identifier(view),
    )
    return bool(found)


_ANALYZE_AFTER = 50_000


async def materialise(
    connection: Connection,
    *,
    uid: str,
    namespace: str,
    name: str,
    bot_id: str,
    audience: Audience,
    source_uid: str | None = None,
) -> int:
    """Write the audience of the bot ``bot_id`` into the ledger once; return the number of
    recipients."""
    async with connection.transaction():
        await connection.execute(
            "INSERT INTO broadcasts (uid, namespace, name, bot_id) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (uid) DO NOTHING",
            uid,
            namespace,
            name,
            bot_id,
        )
        # The row lock serialises two materialisations of one broadcast (a retry racing a
        # slow first attempt): the second sees materialised_at and does nothing.
        row = await connection.fetchrow(
            "SELECT total, materialised_at FROM broadcasts WHERE uid = $1 FOR UPDATE", uid
        )
        if row is not None and row["materialised_at"] is not None:
            return int(row["total"])
        select, params = audience_query(
            audience,
            bot_id=bot_id,
            segment_has_bot_id=await segment_has_bot_id(connection, audience),
            source_uid=source_uid,
        )
        status = await connection.execute(
            "INSERT INTO deliveries (broadcast_uid, chat_id) "  # noqa: S608
            f"SELECT $1, chat_id FROM ({select}) "
            "AS audience ORDER BY chat_id ON CONFLICT DO NOTHING",
            uid,
            *params,
        )
        inserted = int(status.rsplit(" ", 1)[-1])
        total = (
            await connection.fetchval(
                "SELECT count(*) FROM deliveries WHERE broadcast_uid = $1", uid
            )
            if inserted == 0
            else inserted
        )
        await connection.execute(
            "UPDATE broadcasts SET total = $2, materialised_at = now() WHERE uid = $1",
            uid,
            total,
        )
    if inserted >= _ANALYZE_AFTER:
        # Until autovacuum gets to them, the planner knows nothing of the rows just written
        # and reads a page of them for queueing by sorting them all: 3-10 s a page at 2M
        # rows, against 55 ms once analysed. ANALYZE samples a fixed number of rows, so it
        # takes well under a second at any size.
        await connection.execute("ANALYZE deliveries")
    return int(total)


async def count_languages(
    connection: Connection,
    *,
    bot_id: str,
    audience: Audience,
    source_uid: str | None = None,
) -> dict[str | None, int]:
    """Recipients the audience selects now, per Telegram language of the bot's subscriber
    (None: no language known, or a chat that is not a subscriber): a dry run's counts, in
    one statement that writes nothing."""
    select, params = audience_query(
        audience,
        bot_id=bot_id,
        segment_has_bot_id=await segment_has_bot_id(connection, audience),
        source_uid=source_uid,
    )
    # $1 is the broadcast uid in the INSERT; here it is an unused placeholder of the same place.
    rows = await connection.fetch(
        "SELECT lower(s.language_code) AS language, count(*) AS n "  # noqa: S608
        f"FROM ({select}) AS audience "
        "LEFT JOIN subscribers s ON s.bot_id = $2 AND s.chat_id = audience.chat_id "
        "WHERE $1::text IS NULL GROUP BY 1",
        None,
        *params,
    )
    return {r["language"]: int(r["n"]) for r in rows}
