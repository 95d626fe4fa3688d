"""Queueing audiences against a real Postgres and a real NATS: preparations sharing a pool
never wait on each other for ever, and a pool that gives no connection is a reported wait.

Twenty Broadcasts applied at once once hung the operator: each preparation held one pool
connection while it waited for a second, so as many preparations as connections waited on
each other for ever, and every reconcile then waited on the pool under its lock."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import nats
import pytest
from nats.js import JetStreamContext

from herald.core import envelopes, streams, subjects
from herald.core.audiences import Audience
from herald.core.envelopes import WorkBatch
from herald.operator import audiences, publishing
from herald.operator.planning import Reason
from herald.operator.waiting import Timeouts, Unavailable

TIMEOUTS = Timeouts(database=2.0, nats=5.0, kubernetes=5.0, materialise=30.0)


@pytest.fixture
async def js(nats_url: str) -> AsyncIterator[JetStreamContext]:
    client = await nats.connect(nats_url)
    context = client.jetstream()
    await streams.ensure_work_stream(context, replicas=1)
    yield context
    await client.close()


async def _materialised(pool: asyncpg.Pool, chats: range) -> str:
    uid = str(uuid.uuid4())
    async with pool.acquire() as connection:
        await audiences.materialise(
            connection,
            uid=uid,
            namespace="ns",
            name=f"b-{uid[:8]}",
            bot_id="1",
            audience=Audience.model_validate({"chatIds": list(chats)}),
        )
    return uid


async def _queued(js: JetStreamContext, uid: str) -> list[list[int]]:
    # The broadcast's own consumer, made by publish_work: a work queue allows no other.
    sub = await js.pull_subscribe_bind(
        durable=subjects.work_consumer(uid), stream=subjects.WORK_STREAM
    )
    chats: list[list[int]] = []
    while True:
        try:
            messages = await sub.fetch(batch=50, timeout=0.5)
        except TimeoutError:
            return chats
        for message in messages:
            batch = envelopes.decode(WorkBatch, message.data)
            chats.append([r.chat_id for r in batch.recipients])
            await message.ack()


async def test_more_preparations_than_connections_all_finish(
    database: str, js: JetStreamContext
) -> None:
    pool = await asyncpg.create_pool(database, min_size=1, max_size=1)
    try:
        uids = [await _materialised(pool, range(i * 100, i * 100 + 7)) for i in range(6)]
        async with asyncio.timeout(30):
            reports = await asyncio.gather(
                *(
                    publishing.publish_work(
                        pool, js, uid=uid, batch_size=2, window=2, timeouts=TIMEOUTS
                    )
                    for uid in uids
                )
            )
        assert [(r.batches, r.recipients) for r in reports] == [(4, 7)] * 6
        first = uids[0]
        assert await _queued(js, first) == [[0, 1], [2, 3], [4, 5], [6]]
        async with pool.acquire() as connection:
            published = await connection.fetch(
                "SELECT published_through, published_at IS NOT NULL AS done FROM broadcasts "
                "ORDER BY published_through"
            )
        assert [(r["published_through"], r["done"]) for r in published] == [
            (i * 100 + 6, True) for i in range(6)
        ]
    finally:
        await pool.close()


async def test_a_republish_from_the_cursor_is_exact(database: str, js: JetStreamContext) -> None:
    pool = await asyncpg.create_pool(database, min_size=1, max_size=2)
    try:
        uid = await _materialised(pool, range(1, 12))
        # As after a crash mid-way: the cursor saved after the first page of two batches.
        async with pool.acquire() as connection:
            await connection.execute(
                "UPDATE broadcasts SET published_through = 4 WHERE uid = $1", uid
            )
        report = await publishing.publish_work(
            pool, js, uid=uid, batch_size=2, window=2, timeouts=TIMEOUTS
        )
        assert (report.batches, report.recipients) == (4, 7)
        assert await _queued(js, uid) == [[5, 6], [7, 8], [9, 10], [11]]
    finally:
        await pool.close()


async def test_a_pool_that_gives_no_connection_is_a_reported_wait(
    database: str, js: JetStreamContext
) -> None:
    pool = await asyncpg.create_pool(database, min_size=1, max_size=1)
    try:
        uid = await _materialised(pool, range(1, 4))
        quick = Timeouts(database=0.3, nats=5.0, kubernetes=5.0, materialise=30.0)
        async with pool.acquire():  # the only connection, held elsewhere
            with pytest.raises(Unavailable) as raised:
                await publishing.publish_work(
                    pool, js, uid=uid, batch_size=2, window=2, timeouts=quick
                )
        assert raised.value.wait.reason is Reason.WAITING_FOR_DATABASE
        assert raised.value.wait.message == (
            "Waiting for Postgres (reading the publish cursor): no answer within 0.3 s; retrying."
        )
        # The connection is back; the retry queues everything.
        report = await publishing.publish_work(
            pool, js, uid=uid, batch_size=2, window=2, timeouts=quick
        )
        assert report.recipients == 3
    finally:
        await pool.close()


async def test_each_recipient_is_addressed_as_the_broadcasts_bot_knows_them(
    database: str, js: JetStreamContext
) -> None:
    pool = await asyncpg.create_pool(database, min_size=1, max_size=2)
    try:
        async with pool.acquire() as connection:
            # One user, two bots, told each a different name and language.
            await connection.execute(
                "INSERT INTO subscribers (bot_id, chat_id, first_name, language_code) VALUES "
                "('1', 7, 'Anna', 'en'), ('2', 7, 'Анна', 'ru')"
            )
        uid = await _materialised(pool, range(7, 8))  # of bot "1"
        await publishing.publish_work(pool, js, uid=uid, batch_size=2, window=2, timeouts=TIMEOUTS)
        sub = await js.pull_subscribe_bind(
            durable=subjects.work_consumer(uid), stream=subjects.WORK_STREAM
        )
        [message] = await sub.fetch(batch=1, timeout=5)
        [recipient] = envelopes.decode(WorkBatch, message.data).recipients
        assert (recipient.chat_id, recipient.first_name, recipient.language_code) == (
            7,
            "Anna",
            "en",
        )
    finally:
        await pool.close()
