"""Queueing a broadcast's ledger as JetStream work, and the other writes to its streams.

Pending rows are published in chat id order from the ``published_through`` cursor. Each
message's ``Nats-Msg-Id`` is ``<uid>:<round>:<first chat id>:<last chat id>`` and batches are
cut the same way every time (fixed size, from the cursor), so after a crash the batches
published after the last saved cursor come out identical and JetStream drops them as
duplicates. Work found lost is queued again in the next round (:func:`requeue`), which no
duplicate window swallows. Rows are read in keyset pages of ``window`` batches, so memory
stays flat whatever the audience size.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

import asyncpg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, PubAck
from nats.js.errors import NotFoundError

from herald.core import envelopes, subjects
from herald.core.envelopes import CompletionRecord, WorkBatch
from herald.operator.waiting import Service, Timeouts, waiting_for

__all__ = [
    "ACK_WAIT_SECONDS",
    "PublishReport",
    "delete_consumer",
    "ensure_consumer",
    "publish_completion",
    "publish_work",
    "purge_work",
    "queued_work",
    "requeue",
]

logger = logging.getLogger(__name__)

# A sender acks a batch once all its rows are terminal; 30 s covers a batch of 100 at a
# bot's 30 msg/s with room to spare, and a slower batch is extended by in-progress acks.
ACK_WAIT_SECONDS = 30.0


@dataclass(frozen=True)
class PublishReport:
    batches: int
    recipients: int


async def ensure_consumer(js: JetStreamContext, uid: str) -> None:
    """The broadcast's durable pull consumer; created before any work so nothing is missed."""
    await js.add_consumer(
        subjects.WORK_STREAM,
        ConsumerConfig(
            durable_name=subjects.work_consumer(uid),
            filter_subject=subjects.work_subject(uid),
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=ACK_WAIT_SECONDS,
            # Unlimited: pauses nak batches back, and senders term() bad data themselves.
            max_deliver=-1,
        ),
    )


async def delete_consumer(js: JetStreamContext, uid: str) -> None:
    with contextlib.suppress(NotFoundError):
        await js.delete_consumer(subjects.WORK_STREAM, subjects.work_consumer(uid))


async def purge_work(js: JetStreamContext, uid: str) -> None:
    """Drop the broadcast's queued batches; other broadcasts' work is untouched."""
    await js.purge_stream(subjects.WORK_STREAM, subject=subjects.work_subject(uid))


# One page of the ledger after the cursor, in chat id order (the primary key's order, so a
# range scan). A page is whole batches, so batches are cut from the cursor as before. The
# profile (language, names) is the one the broadcast's bot knows: a user may be the
# subscriber of several bots, with another language in each.
_PAGE = """
SELECT d.chat_id, s.language_code, s.first_name, s.last_name, s.username
  FROM deliveries d
  JOIN broadcasts b ON b.uid = d.broadcast_uid
  LEFT JOIN subscribers s ON s.bot_id = b.bot_id AND s.chat_id = d.chat_id
 WHERE d.broadcast_uid = $1 AND d.chat_id > $2 AND d.state = 'pending'
 ORDER BY d.chat_id
 LIMIT $3
"""
_MIN_CHAT_ID = -(2**63)


async def publish_work(
    pool: asyncpg.Pool,
    js: JetStreamContext,
    *,
    uid: str,
    batch_size: int,
    window: int,
    timeouts: Timeouts,
) -> PublishReport:
    """Publish every ledger row after the cursor; mark the broadcast published at the end.

    A connection is held only for one statement at a time, never while NATS is awaited, and
    never two at once: preparations sharing a pool can then slow each other down but never
    wait on each other for ever (two nested acquires per preparation once deadlocked a pool
    with as many preparations as connections). Each page is read, published, its acks
    awaited, and only then the cursor saved, so a saved cursor never runs ahead of stored
    work."""
    db, bus = timeouts.database, timeouts.nats
    async with waiting_for(Service.NATS, bus, "creating the work consumer"):
        await ensure_consumer(js, uid)
    async with (
        waiting_for(Service.DATABASE, db, "reading the publish cursor"),
        pool.acquire() as connection,
    ):
        cursor = await connection.fetchrow(
            "SELECT published_through, publish_round FROM broadcasts WHERE uid = $1", uid
        )
    cursor_at = cursor["published_through"] if cursor is not None else None
    publish_round = int(cursor["publish_round"]) if cursor is not None else 0
    after = _MIN_CHAT_ID if cursor_at is None else int(cursor_at)
    subject = subjects.work_subject(uid)
    page_size = batch_size * window
    batches = recipients = 0
    while True:
        async with (
            waiting_for(Service.DATABASE, db, "reading the ledger to queue it"),
            pool.acquire() as connection,
        ):
            rows = await connection.fetch(_PAGE, uid, after, page_size)
        if not rows:
            break
        async with waiting_for(Service.NATS, bus, "queueing work"):
            inflight: list[asyncio.Future[PubAck]] = []
            for start in range(0, len(rows), batch_size):
                page = rows[start : start + batch_size]
                first, last = int(page[0]["chat_id"]), int(page[-1]["chat_id"])
                inflight.append(
                    await js.publish_async(
                        subject,
                        envelopes.encode_work(uid, page),
                        headers={"Nats-Msg-Id": WorkBatch.id_of(uid, publish_round, first, last)},
                    )
                )
            await asyncio.gather(*inflight)
        after = int(rows[-1]["chat_id"])
        async with (
            waiting_for(Service.DATABASE, db, "saving the publish cursor"),
            pool.acquire() as connection,
        ):
            await connection.execute(
                "UPDATE broadcasts SET published_through = $2 WHERE uid = $1", uid, after
            )
        batches += len(inflight)
        recipients += len(rows)
        if len(rows) < page_size:
            break
    async with (
        waiting_for(Service.DATABASE, db, "marking the work queued"),
        pool.acquire() as connection,
    ):
        await connection.execute(
            "UPDATE broadcasts SET published_at = now() WHERE uid = $1 AND published_at IS NULL",
            uid,
        )
    return PublishReport(batches=batches, recipients=recipients)


async def queued_work(js: JetStreamContext, uid: str) -> int:
    """Work messages of the broadcast in its consumer, delivered or not, not yet acked; 0
    when there is no consumer (deleted, or lost with the stream)."""
    try:
        info = await js.consumer_info(subjects.WORK_STREAM, subjects.work_consumer(uid))
    except NotFoundError:
        return 0
    return int(info.num_pending or 0) + int(info.num_ack_pending or 0)


async def requeue(pool: asyncpg.Pool, uid: str) -> bool:
    """Start a new publishing round for a published broadcast: its pending rows are then
    queued again from the start. False when it was not published (a round is under way)."""
    status: str = await pool.execute(
        """
        UPDATE broadcasts
           SET publish_round = publish_round + 1, published_through = NULL, published_at = NULL
         WHERE uid = $1 AND published_at IS NOT NULL
        """,
        uid,
    )
    return status == "UPDATE 1"


async def publish_completion(js: JetStreamContext, record: CompletionRecord) -> None:
    """Announce the end of a broadcast, once: the message id makes a repeat a no-op."""
    await js.publish(
        subjects.COMPLETIONS_SUBJECT,
        envelopes.encode(record),
        headers={"Nats-Msg-Id": f"{record.uid}:completed"},
    )
