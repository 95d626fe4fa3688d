"""The delivery ledger and the ``messages`` table as the sender uses them: claim rows right
before sending, write what became of them. The only module of the sender that speaks SQL."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from herald.core.deliveries import RECALL_WINDOW_HOURS, Amendment, DeliveryState
from herald.core.envelopes import Recipient
from herald.sender.outcomes import Reason

__all__ = ["ERRORS", "ClaimedMessage", "Claims", "Ledger", "Row", "ToAmend"]

# What a ledger call raises when Postgres goes away or comes back, all worth a retry: its
# own errors, socket errors, and the client's errors about a connection cut under it
# (InterfaceError: "the underlying connection is closed" on leaving a transaction;
# InternalClientError: resetting a connection whose cut query is still pending).
ERRORS: tuple[type[Exception], ...] = (
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
)

# One statement, one round trip, atomic: rows still pending are claimed. Rows another sender
# claimed longer ago than the claim TTL belong to a dead sender: one still `claimed` never
# reached the wire and is claimed again whatever the delivery; one `sending` may have, and is
# either claimed again (atLeastOnce) or settled as uncertain (atMostOnce). Every row's
# resulting state is returned.
_CLAIM = """
WITH target AS (
    SELECT chat_id, state, claimed_at < now() - make_interval(secs => $4) AS stale
    FROM deliveries
    WHERE broadcast_uid = $1 AND chat_id = ANY($2::bigint[])
    FOR UPDATE
), taken AS (
    UPDATE deliveries d
    SET state = 'claimed', claimed_by = $3, claimed_at = now(), attempts = d.attempts + 1
    FROM target t
    WHERE d.broadcast_uid = $1 AND d.chat_id = t.chat_id
      AND (t.state = 'pending'
           OR (t.state = 'claimed' AND t.stale)
           OR (t.state = 'sending' AND t.stale AND $5))
    RETURNING d.chat_id
), lost AS (
    UPDATE deliveries d
    SET state = 'uncertain', reason = $6, finished_at = now()
    FROM target t
    WHERE d.broadcast_uid = $1 AND d.chat_id = t.chat_id
      AND t.state = 'sending' AND t.stale AND NOT $5
    RETURNING d.chat_id
)
SELECT t.chat_id, t.state,
       taken.chat_id IS NOT NULL AS taken,
       lost.chat_id IS NOT NULL AS lost
FROM target t
LEFT JOIN taken USING (chat_id)
LEFT JOIN lost USING (chat_id)
"""

# The fence before a request leaves: only rows this sender still holds are marked (a row
# another sender took over, or the operator closed, is not to be sent from here), and the
# claim's age restarts, so a slow request is not taken for a dead sender's claim. A row
# already `sending` is one being retried.
_MARK = """
UPDATE deliveries d
SET state = 'sending', claimed_at = now()
FROM unnest($1::uuid[], $2::bigint[]) AS u(broadcast_uid, chat_id)
WHERE d.broadcast_uid = u.broadcast_uid AND d.chat_id = u.chat_id
  AND d.state IN ('claimed', 'sending') AND d.claimed_by = $3
RETURNING d.broadcast_uid, d.chat_id
"""

# Only rows this sender still holds: a row reclaimed by another sender meanwhile is theirs.
_RECORD = """
UPDATE deliveries d
SET state = u.state,
    reason = u.reason,
    message_id = u.message_id,
    message_ids = CASE WHEN u.message_id IS NULL THEN NULL
                       ELSE string_to_array(u.message_ids, ',')::bigint[] END,
    -- Sent with the correction in force: it shows it, nothing to edit.
    correction_key = CASE WHEN u.state = 'delivered' THEN u.correction_key
                          ELSE d.correction_key END,
    finished_at = CASE WHEN u.state = 'pending' THEN NULL ELSE now() END,
    claimed_by = CASE WHEN u.state = 'pending' THEN NULL ELSE d.claimed_by END,
    claimed_at = CASE WHEN u.state = 'pending' THEN NULL ELSE d.claimed_at END
FROM unnest($2::bigint[], $3::text[], $4::text[], $5::bigint[], $7::text[], $8::text[])
     AS u(chat_id, state, reason, message_id, correction_key, message_ids)
WHERE d.broadcast_uid = $1 AND d.chat_id = u.chat_id
  AND d.state IN ('claimed', 'sending') AND d.claimed_by = $6
"""

# Delivered rows still to recall ($2) or to edit to the correction keyed $3, claimed in the
# commit right before their requests leave (claim-before-act): a row another sender holds
# is skipped unless its claim is older than the claim TTL (that sender died). Deleting or
# editing again after a crash is harmless (see outcomes.judge_amend). The subscriber's names
# come along for the correction's placeholders; a row delivered more than 48 hours ago
# cannot be deleted any more, and says so.
_CLAIM_AMEND = """
WITH target AS (
    SELECT chat_id FROM deliveries
    WHERE broadcast_uid = $1 AND state = 'delivered' AND recall_outcome IS NULL
      AND ($2 OR correction_key IS DISTINCT FROM $3)
      AND (amend_by IS NULL OR amend_at < now() - make_interval(secs => $5))
    ORDER BY chat_id
    LIMIT $4
    FOR UPDATE SKIP LOCKED
)
UPDATE deliveries d
SET amend_by = $6, amend_at = now()
FROM target t
LEFT JOIN subscribers s ON s.bot_id = $7 AND s.chat_id = t.chat_id
WHERE d.broadcast_uid = $1 AND d.chat_id = t.chat_id
RETURNING d.chat_id, d.message_id, d.message_ids,
          d.finished_at < now() - make_interval(hours => $8) AS too_old,
          s.language_code, s.first_name, s.last_name, s.username
"""

# Only rows this sender still holds; the claim ends with the outcome.
_RECORD_AMEND = """
UPDATE deliveries d
SET recall_outcome = CASE WHEN $2 THEN u.outcome ELSE d.recall_outcome END,
    recalled_at = CASE WHEN $2 THEN now() ELSE d.recalled_at END,
    correction_key = CASE WHEN $2 THEN d.correction_key ELSE $3 END,
    correction_outcome = CASE WHEN $2 THEN d.correction_outcome ELSE u.outcome END,
    corrected_at = CASE WHEN $2 THEN d.corrected_at ELSE now() END,
    amend_by = NULL,
    amend_at = NULL
FROM unnest($4::bigint[], $5::text[]) AS u(chat_id, outcome)
WHERE d.broadcast_uid = $1 AND d.chat_id = u.chat_id AND d.amend_by = $6
"""

# Claimed and not acted on (a halt, a stop): free for this sender later or another one.
_RELEASE_AMEND = """
UPDATE deliveries SET amend_by = NULL, amend_at = NULL
WHERE broadcast_uid = $1 AND chat_id = ANY($2::bigint[]) AND amend_by = $3
"""

# Per bot: a user who blocked one bot is still the subscriber of the others.
_DEACTIVATE = """
UPDATE subscribers s SET is_active = false, updated_at = now()
FROM unnest($1::text[], $2::bigint[]) AS u(bot_id, chat_id)
WHERE s.bot_id = u.bot_id AND s.chat_id = u.chat_id AND s.is_active
"""

_DELIVERED = "SELECT count(*) FROM deliveries WHERE broadcast_uid = $1 AND state = 'delivered'"

# Transactional messages are claimed shortly before their slot, as ledger rows are: only
# while pending, so a message that is final, or another sender's, is never sent again. One
# past its deadline (the database's clock decides, as for every claim) ends failed instead,
# its callback due.
_CLAIM_MESSAGES = """
UPDATE messages
SET state = CASE WHEN deadline <= now() THEN 'failed' ELSE 'claimed' END,
    reason = CASE WHEN deadline <= now() THEN $3 ELSE reason END,
    claimed_by = $2,
    claimed_at = now(),
    callback_state = CASE WHEN deadline <= now() AND callback_url IS NOT NULL THEN 'pending'
                          ELSE callback_state END,
    callback_next_at = CASE WHEN deadline <= now() AND callback_url IS NOT NULL THEN now()
                            ELSE callback_next_at END
WHERE id = ANY($1::uuid[]) AND state = 'pending'
RETURNING id, state, chat_id, content, deadline
"""

# Only a claim this sender still holds: one the operator's sweep settled meanwhile is left.
_RECORD_MESSAGE = """
UPDATE messages
SET state = $2,
    reason = $3,
    telegram_message_id = $4,
    sent_at = CASE WHEN $2 = 'delivered' THEN now() END,
    callback_state = CASE WHEN callback_url IS NOT NULL THEN 'pending' ELSE callback_state END,
    callback_next_at = CASE WHEN callback_url IS NOT NULL THEN now() ELSE callback_next_at END
WHERE id = $1 AND state = 'claimed' AND claimed_by = $5
"""

# Nothing was sent (a 429, a stop): pending again, for this sender later or the next holder.
_RELEASE_MESSAGES = """
UPDATE messages SET state = 'pending', claimed_by = NULL, claimed_at = NULL
WHERE id = ANY($1::uuid[]) AND state = 'claimed' AND claimed_by = $2
"""


@dataclass(frozen=True, slots=True)
class Row:
    """What to write for one claimed row; state pending gives the row back."""

    chat_id: int
    state: DeliveryState
    reason: str | None = None
    message_id: int | None = None
    # The bot Telegram answered 403 for (blocked, deactivated): the user is no longer its
    # subscriber. None: nothing to deactivate.
    deactivate_for: str | None = None
    # Every message the send made (an album's items); () when only message_id is known.
    message_ids: tuple[int, ...] = ()
    # The correction (its key) a delivered row was sent with: it shows it already.
    correction_key: str | None = None


@dataclass(frozen=True, slots=True)
class ToAmend:
    """A delivered row claimed for its deletion or edit."""

    recipient: Recipient
    message_ids: tuple[int, ...]
    too_old: bool  # past the 48 hours a bot may delete its message in


@dataclass(slots=True)
class Claims:
    claimed: list[int] = field(default_factory=list)  # send these now
    settled: list[int] = field(default_factory=list)  # terminal (or no row): nothing to do
    busy: list[int] = field(default_factory=list)  # a live sender holds them


@dataclass(frozen=True, slots=True)
class ClaimedMessage:
    """A transactional message's row as its claim found it: ``state`` is claimed (send it)
    or failed (past its deadline)."""

    state: DeliveryState
    chat_id: int
    content: dict[str, Any]
    deadline: datetime | None


_OPEN = frozenset({DeliveryState.CLAIMED, DeliveryState.SENDING})


class Ledger:
    def __init__(self, pool: asyncpg.Pool, *, me: str, claim_ttl: float) -> None:
        self._pool = pool
        self._me = me
        self._claim_ttl = claim_ttl

    async def claim(self, uid: str, chat_ids: Sequence[int], *, reclaim: bool) -> Claims:
        """Claim the pending rows among `chat_ids`; `reclaim` takes over a dead sender's."""
        rows = await self._pool.fetch(
            _CLAIM,
            UUID(uid),
            list(chat_ids),
            self._me,
            self._claim_ttl,
            reclaim,
            str(Reason.SENDER_LOST),
        )
        claims = Claims()
        found: set[int] = set()
        for row in rows:
            chat_id = row["chat_id"]
            found.add(chat_id)
            if row["taken"]:
                claims.claimed.append(chat_id)
            elif row["lost"] or row["state"] not in _OPEN:
                claims.settled.append(chat_id)
            else:
                claims.busy.append(chat_id)
        # A recipient without a ledger row is not part of the broadcast: nothing to send.
        claims.settled.extend(chat_id for chat_id in chat_ids if chat_id not in found)
        order = {chat_id: index for index, chat_id in enumerate(chat_ids)}
        claims.claimed.sort(key=order.__getitem__)
        return claims

    async def mark_sending(self, rows: Sequence[tuple[str, int]]) -> set[tuple[str, int]]:
        """Mark claimed rows (broadcast uid, chat id) as sending, in one commit; returns those
        still this sender's, the only ones it may send."""
        marked = await self._pool.fetch(
            _MARK, [UUID(uid) for uid, _ in rows], [chat_id for _, chat_id in rows], self._me
        )
        return {(str(row["broadcast_uid"]), int(row["chat_id"])) for row in marked}

    async def record(self, writes: dict[str, list[Row]]) -> None:
        """Write outcomes of several broadcasts in one transaction."""
        deactivate = [
            (row.deactivate_for, row.chat_id)
            for rows in writes.values()
            for row in rows
            if row.deactivate_for is not None
        ]
        async with self._pool.acquire() as connection, connection.transaction():
            for uid, rows in writes.items():
                await connection.execute(
                    _RECORD,
                    UUID(uid),
                    [row.chat_id for row in rows],
                    [str(row.state) for row in rows],
                    [row.reason for row in rows],
                    [row.message_id for row in rows],
                    self._me,
                    [row.correction_key for row in rows],
                    [",".join(map(str, row.message_ids or _ids(row))) for row in rows],
                )
            if deactivate:
                bots, chats = zip(*deactivate, strict=True)
                await connection.execute(_DEACTIVATE, list(bots), list(chats))

    async def claim_amends(
        self, uid: str, *, bot_id: str, recall: bool, correction: str | None, limit: int
    ) -> list[ToAmend]:
        """Claim up to `limit` delivered rows still to recall (or, without `recall`, to edit
        to the correction keyed `correction`)."""
        rows = await self._pool.fetch(
            _CLAIM_AMEND,
            UUID(uid),
            recall,
            correction,
            limit,
            self._claim_ttl,
            self._me,
            bot_id,
            RECALL_WINDOW_HOURS,
        )
        found = [
            ToAmend(
                Recipient(
                    int(row["chat_id"]),
                    row["language_code"],
                    row["first_name"],
                    row["last_name"],
                    row["username"],
                ),
                tuple(row["message_ids"] or ())
                or ((int(row["message_id"]),) if row["message_id"] is not None else ()),
                bool(row["too_old"]),
            )
            for row in rows
        ]
        return sorted(found, key=lambda each: each.recipient.chat_id)

    async def record_amends(
        self,
        uid: str,
        outcomes: Sequence[tuple[int, Amendment]],
        *,
        recall: bool,
        correction: str | None,
    ) -> None:
        """Write what the deletions (or edits to `correction`) of these rows came to."""
        if outcomes:
            await self._pool.execute(
                _RECORD_AMEND,
                UUID(uid),
                recall,
                correction,
                [chat_id for chat_id, _ in outcomes],
                [str(outcome) for _, outcome in outcomes],
                self._me,
            )

    async def release_amends(self, uid: str, chat_ids: Sequence[int]) -> None:
        if chat_ids:
            await self._pool.execute(_RELEASE_AMEND, UUID(uid), list(chat_ids), self._me)

    async def delivered(self, uid: str) -> int:
        count = await self._pool.fetchval(_DELIVERED, UUID(uid))
        return int(count or 0)

    async def claim_messages(self, message_ids: Sequence[str]) -> dict[str, ClaimedMessage]:
        """Claim those of the messages that are pending, by id; the others are not to be
        sent here (final, or claimed)."""
        rows = await self._pool.fetch(
            _CLAIM_MESSAGES,
            [UUID(each) for each in message_ids],
            self._me,
            str(Reason.DEADLINE_EXCEEDED),
        )
        return {
            str(row["id"]): ClaimedMessage(
                DeliveryState(row["state"]),
                int(row["chat_id"]),
                json.loads(row["content"]),
                row["deadline"],
            )
            for row in rows
        }

    async def record_message(self, message_id: str, row: Row) -> bool:
        """Write a claimed message's final state (and deactivate its chat's subscription);
        False when the claim was no longer this sender's."""
        async with self._pool.acquire() as connection, connection.transaction():
            status: str = await connection.execute(
                _RECORD_MESSAGE,
                UUID(message_id),
                str(row.state),
                row.reason,
                row.message_id,
                self._me,
            )
            if row.deactivate_for is not None:
                await connection.execute(_DEACTIVATE, [row.deactivate_for], [row.chat_id])
        return status == "UPDATE 1"

    async def release_messages(self, message_ids: Sequence[str]) -> None:
        """Give claimed messages that were not sent back: pending again."""
        if message_ids:
            await self._pool.execute(
                _RELEASE_MESSAGES, [UUID(each) for each in message_ids], self._me
            )


def _ids(row: Row) -> tuple[int, ...]:
    return (row.message_id,) if row.message_id is not None else ()
