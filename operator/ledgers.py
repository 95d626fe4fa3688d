"""The operator's view of the delivery ledger: its bookkeeping row, counts per state, and the
few writes the operator makes to it (closing what a stopped broadcast leaves open, recording
that completion was announced). Senders own every other write."""

from __future__ import annotations

import json

import asyncpg

from herald.core.deliveries import DeliveryState
from herald.operator.audiences import Connection
from herald.operator.planning import AmendCounts, LedgerFacts

__all__ = ["click_counts", "close_open", "ledger_facts", "record_completion"]

# A claim this old after a stop belongs to a sender that died or was told to stop before it
# recorded the outcome. One marked sending may have been sent, so it is closed as uncertain,
# never as failed; one still claimed never left (a sender marks a row before its request, and
# the mark fails once the row is closed here), so it fails like a pending one.
STALE_CLAIM_SECONDS = 60


async def ledger_facts(
    connection: Connection | asyncpg.Pool, uid: str, *, correction: str | None = None
) -> LedgerFacts | None:
    """The bookkeeping row, counts per state, and what the delivered rows show now against
    spec.recall and the correction keyed `correction`; None when nothing was materialised
    yet. Once the retention removed (or began removing) the ledger's rows, the counts are
    those it kept: the same facts as before, so nothing is planned again; and nothing is
    left to recall or correct."""
    row = await connection.fetchrow(
        "SELECT total, materialised_at, published_at, completed_at, ledger_counts "
        "FROM broadcasts WHERE uid = $1",
        uid,
    )
    if row is None:
        return None
    kept = _kept(row["ledger_counts"])
    # A removed ledger's message ids are gone with its rows: nothing is left to delete or
    # edit, whatever spec.recall and spec.correction say.
    amends = AmendCounts()
    if kept is not None:
        states, clicks = kept
        counts = {DeliveryState(state): n for state, n in states.items()}
    else:
        # One pass over the broadcast's rows for both the counts and the amends (of the
        # delivered rows): at 10M rows each pass is seconds.
        rows = await connection.fetch(_COUNTS, uid, correction)
        counts = {DeliveryState(r["state"]): int(r["n"]) for r in rows}
        delivered = next((r for r in rows if r["state"] == DeliveryState.DELIVERED), None)
        if delivered is not None:
            asked = correction is not None
            amends = AmendCounts(
                recalled=int(delivered["recalled"]),
                too_old=int(delivered["too_old"]),
                to_recall=int(delivered["to_recall"]),
                corrected=int(delivered["corrected"]) if asked else 0,
                to_correct=int(delivered["to_correct"]) if asked else 0,
            )
        clicks = await _counted_clicks(connection, uid)
    return LedgerFacts(
        materialised=row["materialised_at"] is not None,
        published=row["published_at"] is not None,
        total=int(row["total"] or 0),
        counts=counts,
        completion_recorded=row["completed_at"] is not None,
        clicks=clicks,
        amends=amends,
    )


# Counts per state; on the delivered rows' line, also what they show against spec.recall
# and the correction keyed $2: recalled, too old to recall, still to recall; edited to the
# correction or sent with it (no outcome: nothing was edited), still to edit to it.
_COUNTS = """
SELECT state, count(*) AS n,
       count(*) FILTER (WHERE recall_outcome = 'recalled') AS recalled,
       count(*) FILTER (WHERE recall_outcome = 'tooOld') AS too_old,
       count(*) FILTER (WHERE recall_outcome IS NULL) AS to_recall,
       count(*) FILTER (WHERE correction_key = $2
                           AND coalesce(correction_outcome, 'corrected') = 'corrected'
                           AND recall_outcome IS NULL) AS corrected,
       count(*) FILTER (WHERE correction_key IS DISTINCT FROM $2
                           AND recall_outcome IS NULL) AS to_correct
  FROM deliveries
 WHERE broadcast_uid = $1
 GROUP BY state
"""


def _kept(value: str | None) -> tuple[dict[str, int], dict[str, int]] | None:
    """The counts the retention kept (migration 0009), as (states, clicks)."""
    if value is None:
        return None
    kept = json.loads(value)
    return (
        {str(k): int(v) for k, v in kept.get("states", {}).items()},
        {str(k): int(v) for k, v in kept.get("clicks", {}).items()},
    )


async def click_counts(connection: Connection | asyncpg.Pool, uid: str) -> dict[str, int]:
    """Distinct chats that pressed each callback button of the broadcast (the bot records
    one row per broadcast, chat and button), or those the retention kept with its counts."""
    kept = _kept(
        await connection.fetchval("SELECT ledger_counts FROM broadcasts WHERE uid = $1", uid)
    )
    if kept is not None:
        return kept[1]
    return await _counted_clicks(connection, uid)


async def _counted_clicks(connection: Connection | asyncpg.Pool, uid: str) -> dict[str, int]:
    rows = await connection.fetch(
        "SELECT callback, count(*) AS n FROM clicks WHERE broadcast_uid = $1 GROUP BY callback",
        uid,
    )
    return {r["callback"]: int(r["n"]) for r in rows}


async def close_open(connection: asyncpg.Connection | asyncpg.Pool, uid: str, reason: str) -> int:
    """Fail every pending recipient of a stopped broadcast with ``reason``, and every claim a
    sender left behind once stale: failed when it never left, uncertain when it was marked
    sending. Returns the rows closed."""
    status: str = await connection.execute(
        """
        UPDATE deliveries
           SET state = CASE WHEN state = 'sending' THEN 'uncertain' ELSE 'failed' END,
               reason = $2,
               finished_at = now()
         WHERE broadcast_uid = $1
           AND (state = 'pending'
                OR (state IN ('claimed', 'sending')
                    AND claimed_at < now() - make_interval(secs => $3)))
        """,
        uid,
        reason,
        float(STALE_CLAIM_SECONDS),
    )
    return int(status.rsplit(" ", 1)[-1])


async def record_completion(connection: asyncpg.Connection | asyncpg.Pool, uid: str) -> None:
    """Remember that the completion record went out, so it is announced once."""
    await connection.execute(
        "UPDATE broadcasts SET completed_at = now() WHERE uid = $1 AND completed_at IS NULL", uid
    )
