"""The ``messages`` table as herald-api reads and writes it (migration 0005).

Every write is one statement, so concurrency is the table's to settle: the unique key on
(namespace, bot, idempotency_key) decides which of any number of concurrent POSTs, on any
number of processes, creates the message, and ``FOR UPDATE SKIP LOCKED`` shares due
callbacks and expiry among the replicas.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from herald.core.contents import Content
from herald.core.deliveries import DeliveryState
from herald.core.envelopes import MessageWork
from herald.core.messages import MessageView, state_of

__all__ = [
    "CallbackDue",
    "MessageRow",
    "NewMessage",
    "OpenCount",
    "claim_callbacks",
    "expire",
    "find",
    "insert",
    "latencies",
    "ledger_page",
    "open_counts",
    "open_of",
    "pending_between",
    "record_callback",
]

_FINAL_ROW_STATES = [
    DeliveryState.DELIVERED.value,
    DeliveryState.BLOCKED.value,
    DeliveryState.FAILED.value,
    DeliveryState.UNCERTAIN.value,
]
_OPEN_ROW_STATES = [DeliveryState.PENDING.value, DeliveryState.CLAIMED.value]
# Written into the queries as it is (hence their S608 waivers); every value is a parameter.
_COLUMNS = (
    "id, namespace, bot, bot_id, idempotency_key, fingerprint, chat_id, content, deadline, "
    "callback_url, state, reason, telegram_message_id, created_at, sent_at"
)


@dataclass(frozen=True)
class NewMessage:
    id: uuid.UUID
    namespace: str
    bot: str
    bot_id: str
    idempotency_key: str
    fingerprint: bytes
    chat_id: int
    content: Content
    deadline: datetime | None
    callback_url: str | None


@dataclass(frozen=True)
class MessageRow:
    id: uuid.UUID
    namespace: str
    bot: str
    bot_id: str
    idempotency_key: str
    fingerprint: bytes
    chat_id: int
    content: str  # the JSON of a Content, as the table keeps it
    deadline: datetime | None
    callback_url: str | None
    state: str
    reason: str | None
    telegram_message_id: int | None
    created_at: datetime
    sent_at: datetime | None

    @classmethod
    def of(cls, record: asyncpg.Record) -> MessageRow:
        return cls(**dict(record))

    def view(self) -> MessageView:
        """The message as the API shows it."""
        return MessageView(
            id=str(self.id),
            state=state_of(self.state),
            reason=self.reason,
            message_id=self.telegram_message_id,
            chat_id=self.chat_id,
            created_at=self.created_at,
            sent_at=self.sent_at,
        )

    def work(self) -> MessageWork:
        """The queued form of the message, for its bot's sender."""
        return MessageWork(
            id=str(self.id),
            namespace=self.namespace,
            bot=self.bot,
            chat_id=self.chat_id,
            content=Content.model_validate_json(self.content),
            deadline=self.deadline,
        )


async def insert(pool: asyncpg.Pool, new: NewMessage) -> tuple[MessageRow, bool]:
    """The message under its key, and whether this call created it. When a concurrent POST
    of the same key is mid-insert, Postgres waits for it to commit before this one does
    nothing, so the row read after is the winner's."""
    content = json.dumps(new.content.model_dump(mode="json", exclude_none=True))
    # Twice at most: the row this insert ran into may expire before it is read, and the key
    # is then free for this message.
    for _ in range(2):
        created = await pool.fetchrow(
            f"""
            INSERT INTO messages (id, namespace, bot, bot_id, idempotency_key, fingerprint,
                                  chat_id, content, deadline, callback_url)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10)
            ON CONFLICT (namespace, bot, idempotency_key) DO NOTHING
            RETURNING {_COLUMNS}
            """,  # noqa: S608
            new.id,
            new.namespace,
            new.bot,
            new.bot_id,
            new.idempotency_key,
            new.fingerprint,
            new.chat_id,
            content,
            new.deadline,
            new.callback_url,
        )
        if created is not None:
            return MessageRow.of(created), True
        existing = await find_by_key(pool, new.namespace, new.bot, new.idempotency_key)
        if existing is not None:
            return existing, False
    raise RuntimeError(f"the key {new.idempotency_key!r} is taken and free in turn")


async def find_by_key(pool: asyncpg.Pool, namespace: str, bot: str, key: str) -> MessageRow | None:
    found = await pool.fetchrow(
        f"SELECT {_COLUMNS} FROM messages "  # noqa: S608
        "WHERE namespace = $1 AND bot = $2 AND idempotency_key = $3",
        namespace,
        bot,
        key,
    )
    return None if found is None else MessageRow.of(found)


async def find(
    pool: asyncpg.Pool, namespace: str, bot: str, message_id: uuid.UUID
) -> MessageRow | None:
    """The message of that Bot with that id; None for another Bot's as for none at all."""
    found = await pool.fetchrow(
        f"SELECT {_COLUMNS} FROM messages WHERE id = $1 AND namespace = $2 AND bot = $3",  # noqa: S608
        message_id,
        namespace,
        bot,
    )
    return None if found is None else MessageRow.of(found)


async def open_of(pool: asyncpg.Pool, bot_id: str, *, up_to: int) -> int:
    """How many of the bot's messages are open, counted up to ``up_to``: the bound is all
    that matters, and the count costs no more than the bound's index entries."""
    count: int = await pool.fetchval(
        "SELECT count(*) FROM (SELECT 1 FROM messages "
        "WHERE bot_id = $1 AND state = ANY($2::text[]) LIMIT $3) AS open",
        bot_id,
        _OPEN_ROW_STATES,
        up_to,
    )
    return count


@dataclass(frozen=True)
class OpenCount:
    namespace: str
    bot: str
    bot_id: str
    open: int


async def open_counts(pool: asyncpg.Pool) -> list[OpenCount]:
    """Every bot with open messages, and how many."""
    rows = await pool.fetch(
        "SELECT namespace, bot, bot_id, count(*) AS open FROM messages "
        "WHERE state = ANY($1::text[]) GROUP BY namespace, bot, bot_id",
        _OPEN_ROW_STATES,
    )
    return [OpenCount(**dict(row)) for row in rows]


async def pending_between(
    pool: asyncpg.Pool,
    *,
    since: datetime | None,
    settled_seconds: float,
    after: tuple[datetime, uuid.UUID] | None = None,
    limit: int,
) -> tuple[list[MessageRow], datetime]:
    """Pending messages accepted from ``since`` (None: ever) until ``settled_seconds`` ago,
    oldest first, after the (created_at, id) ``after``; and that horizon, the database's
    clock less ``settled_seconds``."""
    horizon: datetime = await pool.fetchval(
        "SELECT now() - make_interval(secs => $1)", settled_seconds
    )
    first_at, first_id = after if after is not None else (None, None)
    rows = await pool.fetch(
        f"""
        SELECT {_COLUMNS} FROM messages
        WHERE state = 'pending' AND created_at < $1
          AND ($2::timestamptz IS NULL OR created_at >= $2)
          AND ($3::timestamptz IS NULL OR (created_at, id) > ($3, $4::uuid))
        ORDER BY created_at, id
        LIMIT $5
        """,  # noqa: S608
        horizon,
        since,
        first_at,
        first_id,
        limit,
    )
    return [MessageRow.of(row) for row in rows], horizon


@dataclass(frozen=True)
class CallbackDue:
    row: MessageRow
    attempts: int  # made before this one


async def claim_callbacks(
    pool: asyncpg.Pool, *, limit: int, hold_seconds: float
) -> list[CallbackDue]:
    """Due callbacks, taken for ``hold_seconds``: their next attempt is put off that long,
    so no other replica takes them meanwhile, and a replica that dies mid-call leaves them
    due again after it."""
    rows = await pool.fetch(
        f"""
        UPDATE messages AS m SET callback_next_at = now() + make_interval(secs => $2)
        FROM (
            SELECT id FROM messages
            WHERE callback_state = 'pending'
              AND (callback_next_at IS NULL OR callback_next_at <= now())
            ORDER BY callback_next_at NULLS FIRST
            LIMIT $1
            FOR UPDATE SKIP LOCKED
        ) AS due
        WHERE m.id = due.id
        RETURNING {", ".join(f"m.{column.strip()}" for column in _COLUMNS.split(","))},
                  m.callback_attempts
        """,  # noqa: S608
        limit,
        hold_seconds,
    )
    found = []
    for row in rows:
        values = dict(row)
        attempts = values.pop("callback_attempts")
        found.append(CallbackDue(MessageRow(**values), attempts))
    return found


async def record_callback(
    pool: asyncpg.Pool, message_id: uuid.UUID, *, state: str, retry_in: float | None
) -> None:
    """One more attempt made: ``state`` pending (again in ``retry_in`` seconds), done or
    failed."""
    await pool.execute(
        """
        UPDATE messages SET callback_state = $2, callback_attempts = callback_attempts + 1,
            callback_next_at = CASE WHEN $3::float8 IS NULL THEN NULL
                                    ELSE now() + make_interval(secs => $3::float8) END
        WHERE id = $1
        """,
        message_id,
        state,
        retry_in,
    )


async def expire(pool: asyncpg.Pool, *, older_than_hours: float, batch: int) -> int:
    """Delete up to ``batch`` finished messages accepted more than ``older_than_hours`` ago
    (their callbacks no longer pending), oldest first; how many were deleted."""
    status: str = await pool.execute(
        """
        DELETE FROM messages WHERE id IN (
            SELECT id FROM messages
            WHERE created_at < now() - make_interval(secs => $1 * 3600)
              AND state = ANY($2::text[])
              AND callback_state IS DISTINCT FROM 'pending'
            ORDER BY created_at
            LIMIT $3
            FOR UPDATE SKIP LOCKED
        )
        """,
        older_than_hours,
        _FINAL_ROW_STATES,
        batch,
    )
    return int(status.rsplit(" ", 1)[-1])


async def latencies(pool: asyncpg.Pool, ids: Sequence[uuid.UUID]) -> list[float]:
    """Seconds from acceptance to Telegram's, of those messages that were sent."""
    rows = await pool.fetch(
        "SELECT extract(epoch FROM sent_at - created_at)::float8 AS seconds FROM messages "
        "WHERE id = ANY($1::uuid[]) AND sent_at IS NOT NULL",
        list(ids),
    )
    return [float(row["seconds"]) for row in rows]


_LEDGER_COLUMNS = (
    "chat_id, state, reason, message_id, attempts, created_at, claimed_at, finished_at, "
    "message_ids, recall_outcome, recalled_at, correction_outcome, corrected_at"
)


async def ledger_page(
    pool: asyncpg.Pool,
    broadcast_uid: uuid.UUID,
    *,
    after: int | None,
    states: Sequence[str] | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Up to ``limit`` rows of a broadcast's ledger in chat id order, after the chat id
    ``after`` (None: from the first), in ``states`` (None: any). A range of the primary key:
    each page costs its own rows, however deep into the ledger it starts."""
    rows: list[asyncpg.Record] = await pool.fetch(
        f"""
        SELECT {_LEDGER_COLUMNS} FROM deliveries
        WHERE broadcast_uid = $1
          AND ($2::bigint IS NULL OR chat_id > $2)
          AND ($3::text[] IS NULL OR state = ANY($3::text[]))
        ORDER BY chat_id
        LIMIT $4
        """,  # noqa: S608
        broadcast_uid,
        after,
        None if states is None else list(states),
        limit,
    )
    return rows
