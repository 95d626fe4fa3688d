"""Retention of the ledger (``HERALD_LEDGER_RETENTION_DAYS``): what is older than the
retention period goes, in batches, so no statement holds its row locks for long and senders
and reconciles go on meanwhile.

What "older" means, so that no work still to be done is ever removed:

- a broadcast's ledger rows and clicks go together, once every recipient was terminal for the
  whole period (``broadcasts.completed_at`` before the cut-off), or, for a Broadcast deleted
  before it finished (its pending rows will never be sent), once its Broadcast is gone and no
  row of its ledger changed for the whole period. A running broadcast loses nothing, however
  old its first rows are. Its bookkeeping row stays, with the counts it had
  (``ledger_counts``), which names no chat: see migration 0009. Presses of its buttons that
  arrive later (the message is still in the chats) go on the next run.
- a transactional message goes once it is finished (terminal, its callback no longer due) and
  was accepted before the cut-off, as herald-api's idempotency expiry does sooner.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import asyncpg

from herald.core.deliveries import TERMINAL_STATES
from herald.kube.errors import KubeError
from herald.operator.connections import Connections
from herald.operator.metrics import Metrics
from herald.operator.settings import LedgerSettings, OperatorSettings
from herald.operator.waiting import Unavailable

__all__ = [
    "Candidate",
    "Removed",
    "abandoned",
    "cutoff",
    "due",
    "remove_expired",
    "retain_forever",
]

logger = logging.getLogger(__name__)

_TERMINAL = sorted(state.value for state in TERMINAL_STATES)

# What each statement runs under: the operator bounds each one (not a whole run, which may
# take many batches) by its database time-out.
Step = Callable[[str], AbstractAsyncContextManager[None]]


def _unbounded(what: str) -> AbstractAsyncContextManager[None]:
    return contextlib.nullcontext()


def cutoff(now: datetime, *, days: int) -> datetime:
    """What finished before this is older than the retention period."""
    return now - timedelta(days=days)


@dataclass(frozen=True)
class Candidate:
    """A broadcast whose ledger may be old enough to go."""

    uid: str
    namespace: str
    completed_at: datetime | None
    # The latest claim, outcome or row of its ledger: read only for an unfinished broadcast
    # whose Broadcast is gone (None: not read), since it costs a scan of the ledger.
    last_change: datetime | None = None


def _watched(c: Candidate, namespaces: Collection[str]) -> bool:
    return not namespaces or c.namespace in namespaces


def abandoned(
    candidates: Iterable[Candidate],
    *,
    live_uids: Collection[str] | None,
    namespaces: Collection[str],
) -> list[Candidate]:
    """The unfinished broadcasts of watched namespaces whose Broadcast is gone (none when the
    Broadcasts could not be listed): those whose ``last_change`` is worth reading."""
    if live_uids is None:
        return []
    return [
        c
        for c in candidates
        if c.completed_at is None and _watched(c, namespaces) and c.uid not in live_uids
    ]


def due(
    candidates: Iterable[Candidate],
    *,
    cut: datetime,
    live_uids: Collection[str] | None,
    namespaces: Collection[str],
) -> list[str]:
    """The uids whose ledgers go now. ``live_uids`` None: the Broadcasts could not be listed,
    so only completed broadcasts go. Broadcasts of namespaces another operator watches
    (``namespaces`` non-empty and without theirs) are left to that operator."""
    chosen: list[str] = []
    for c in candidates:
        if not _watched(c, namespaces):
            continue
        if c.completed_at is not None:
            if c.completed_at < cut:
                chosen.append(c.uid)
        elif (
            live_uids is not None
            and c.uid not in live_uids
            and c.last_change is not None
            and c.last_change < cut
        ):
            chosen.append(c.uid)
    return chosen


@dataclass
class Removed:
    """Rows removed by one run, per table."""

    ledgers: int = 0
    deliveries: int = 0
    clicks: int = 0
    messages: int = 0


# Every broadcast not yet removed that finished before the cut-off, or was never completed
# and created before it (those need their Broadcast to be gone as well, decided in `due`).
_CANDIDATES = """
SELECT uid::text AS uid, namespace, completed_at FROM broadcasts
WHERE ledger_removed_at IS NULL
  AND (completed_at < $1 OR (completed_at IS NULL AND created_at < $1))
"""

_LAST_CHANGE = """
SELECT greatest(
    (SELECT created_at FROM broadcasts WHERE uid = $1),
    (SELECT max(greatest(created_at, claimed_at, finished_at))
       FROM deliveries WHERE broadcast_uid = $1)
)
"""

# The counts the status was made of, kept before the first batch goes (once: a run that
# stopped half-way keeps the counts it took the first time).
_KEEP_COUNTS = """
UPDATE broadcasts SET ledger_counts = jsonb_build_object(
    'states', (SELECT coalesce(jsonb_object_agg(state, n), '{}'::jsonb) FROM (
        SELECT state, count(*) AS n FROM deliveries WHERE broadcast_uid = $1 GROUP BY state
    ) s),
    'clicks', (SELECT coalesce(jsonb_object_agg(callback, n), '{}'::jsonb) FROM (
        SELECT callback, count(*) AS n FROM clicks WHERE broadcast_uid = $1 GROUP BY callback
    ) c)
)
WHERE uid = $1 AND ledger_counts IS NULL
"""

# One batch: the rows are found through the primary key's broadcast_uid prefix and deleted
# by their physical address, so each statement touches at most $2 rows.
_DELETE_BATCH = """
DELETE FROM {table} WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM {table} WHERE broadcast_uid = $1 LIMIT $2
))
"""
_DELETE_DELIVERIES = _DELETE_BATCH.format(table="deliveries")
_DELETE_CLICKS = _DELETE_BATCH.format(table="clicks")

# Presses go on after a ledger was removed (its message is still in the chats); they go too,
# on the next run.
_LATE_CLICKS = """
SELECT b.uid::text AS uid FROM broadcasts b
WHERE b.ledger_removed_at IS NOT NULL
  AND EXISTS (SELECT 1 FROM clicks c WHERE c.broadcast_uid = b.uid)
"""

_DELETE_MESSAGES = """
DELETE FROM messages WHERE id IN (
    SELECT id FROM messages
    WHERE created_at < $1
      AND state = ANY($2::text[])
      AND callback_state IS DISTINCT FROM 'pending'
    ORDER BY created_at
    LIMIT $3
    FOR UPDATE SKIP LOCKED
)
"""


async def candidates(
    connection: asyncpg.Pool | asyncpg.Connection, cut: datetime
) -> list[Candidate]:
    rows = await connection.fetch(_CANDIDATES, cut)
    return [
        Candidate(uid=r["uid"], namespace=r["namespace"], completed_at=r["completed_at"])
        for r in rows
    ]


async def remove_ledger(
    connection: asyncpg.Pool | asyncpg.Connection,
    uid: str,
    *,
    batch: int,
    removed: Removed,
    step: Step = _unbounded,
) -> None:
    """Keep the broadcast's counts, then delete its ledger rows and clicks ``batch`` at a
    time, each batch its own transaction; the bookkeeping row says when the last went."""
    async with step("keeping a ledger's counts"):
        await connection.execute(_KEEP_COUNTS, uid)
    removed.deliveries += await _delete_all(connection, _DELETE_DELIVERIES, uid, batch, step)
    removed.clicks += await _delete_all(connection, _DELETE_CLICKS, uid, batch, step)
    async with step("marking a ledger removed"):
        await connection.execute(
            "UPDATE broadcasts SET ledger_removed_at = now() WHERE uid = $1", uid
        )
    removed.ledgers += 1


async def _delete_all(
    connection: asyncpg.Pool | asyncpg.Connection, statement: str, uid: str, batch: int, step: Step
) -> int:
    total = 0
    while True:
        async with step("removing a batch of expired ledger rows"):
            n = _count(await connection.execute(statement, uid, batch))
        total += n
        if n < batch:
            return total


async def remove_messages(
    connection: asyncpg.Pool | asyncpg.Connection,
    cut: datetime,
    *,
    batch: int,
    step: Step = _unbounded,
) -> int:
    """Delete finished transactional messages accepted before ``cut``, ``batch`` at a time."""
    total = 0
    while True:
        async with step("removing a batch of expired transactional messages"):
            n = _count(await connection.execute(_DELETE_MESSAGES, cut, _TERMINAL, batch))
        total += n
        if n < batch:
            return total


async def remove_expired(
    connection: asyncpg.Pool | asyncpg.Connection,
    *,
    now: datetime,
    days: int,
    batch: int,
    live_uids: Collection[str] | None,
    namespaces: Collection[str] = (),
    step: Step = _unbounded,
    removed: Removed | None = None,
) -> Removed:
    """One retention run: every ledger and message older than ``days`` before ``now``,
    counted into ``removed``. Whatever a failed run removed stays removed (and counted);
    the next run goes on from there."""
    cut = cutoff(now, days=days)
    removed = removed if removed is not None else Removed()
    async with step("finding expired ledgers"):
        found = await candidates(connection, cut)
    read: dict[str, Candidate] = {}
    for c in abandoned(found, live_uids=live_uids, namespaces=namespaces):
        async with step("reading when an abandoned ledger last changed"):
            read[c.uid] = replace(c, last_change=await connection.fetchval(_LAST_CHANGE, c.uid))
    found = [read.get(c.uid, c) for c in found]
    for uid in due(found, cut=cut, live_uids=live_uids, namespaces=namespaces):
        await remove_ledger(connection, uid, batch=batch, removed=removed, step=step)
    async with step("finding clicks of removed ledgers"):
        late = [r["uid"] for r in await connection.fetch(_LATE_CLICKS)]
    for uid in late:
        removed.clicks += await _delete_all(connection, _DELETE_CLICKS, uid, batch, step)
    removed.messages = await remove_messages(connection, cut, batch=batch, step=step)
    return removed


def _count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


async def retain_forever(
    c: Connections, operator: OperatorSettings, ledger: LedgerSettings, metrics: Metrics
) -> None:
    """Every ``retention_interval_seconds`` while a retention period is set: one run."""
    days = ledger.retention_days
    if days is None:
        return  # kept for ever, the default
    while True:
        await asyncio.sleep(ledger.retention_interval_seconds)
        try:
            live: set[str] | None = await c.kubernetes(
                "listing Broadcasts",
                lambda: c.broadcasts.live_uids(operator.namespaces or None),
            )
        except (Unavailable, KubeError) as exc:
            # Completed broadcasts can still go; those deleted unfinished wait for a listing.
            logger.warning(
                "Retention: %s", exc.wait.message if isinstance(exc, Unavailable) else exc
            )
            live = None
        removed = Removed()
        try:
            # The preparing pool: a long run never takes the connections reconciles need.
            pool = c.preparing_pool
            async with c.database("reading the database's clock"):
                now: datetime = await pool.fetchval("SELECT now()")
            await remove_expired(
                pool,
                now=now,
                days=days,
                batch=ledger.retention_batch,
                live_uids=live,
                namespaces=operator.namespaces,
                step=c.database,
                removed=removed,
            )
        except Unavailable as exc:
            logger.warning("Retention: %s", exc.wait.message)
        except asyncpg.PostgresError as exc:
            logger.warning("Retention failed, trying again next period: %s", exc)
        metrics.retained(
            ledgers=removed.ledgers,
            deliveries=removed.deliveries,
            clicks=removed.clicks,
            messages=removed.messages,
        )
        if removed.ledgers or removed.messages:
            logger.info(
                "Retention removed the ledgers of %d broadcasts (%d rows, %d clicks) and %d "
                "transactional messages older than %d days.",
                removed.ledgers,
                removed.deliveries,
                removed.clicks,
                removed.messages,
                days,
            )
