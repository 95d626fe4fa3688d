"""Queueing accepted messages for their bot's sender, and saying that the bot has traffic.

A message is queued on ``herald.messages.<bot id>`` under its own id (``Nats-Msg-Id``), so
the stream drops a second publish of it within its dedupe window, and the sender's claim of
the row (pending to claimed, once) guards beyond it. A publish that fails leaves the row
pending; :meth:`Publisher.republish` queues such rows again once they are
``republish_seconds`` old. It walks the pending rows by acceptance time from a cursor, so
each is looked at about once, not on every round: the rows this process queued itself are
skipped, the others (of a replica that died between its insert and its publish) are
published again, a no-op for the stream when they were queued already. The cursor stops at
the first row whose publish failed, so none is left behind.

The bot's traffic record (KV ``traffic.<bot id>``) makes a sender hold the bot, and the
operator keep a sender running, for a window after it; it is written at most every
``traffic_seconds`` per bot, on each accepted message and for each bot with open messages.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import asyncpg
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from herald.api import postgres
from herald.api.metrics import Metrics
from herald.core import subjects
from herald.core.envelopes import BotTraffic, MessageWork, encode

__all__ = ["Publisher"]

logger = logging.getLogger(__name__)

_PUBLISH_SECONDS = 2.0
_PAGE = 500
# How long this process remembers what it published itself: well past the time its rows
# take to pass the republish cursor.
_REMEMBER_SECONDS = 120.0


class Publisher:
    def __init__(
        self,
        js: JetStreamContext,
        control: KeyValue,
        *,
        traffic_seconds: float,
        republish_seconds: float,
        metrics: Metrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._js = js
        self._metrics = metrics
        self._control = control
        self._traffic_seconds = traffic_seconds
        self._republish_seconds = republish_seconds
        self._clock = clock
        self._traffic_at: dict[str, float] = {}
        self._published: dict[uuid.UUID, float] = {}
        self._cursor: datetime | None = None  # None: from the oldest pending row

    async def publish(self, bot_id: str, work: MessageWork) -> bool:
        """Queue ``work``; False (logged) when NATS did not take it."""
        try:
            await self._js.publish(
                subjects.message_subject(bot_id),
                encode(work),
                timeout=_PUBLISH_SECONDS,
                stream=subjects.MESSAGES_STREAM,
                headers={"Nats-Msg-Id": work.id},
            )
        except (NatsError, TimeoutError) as exc:
            logger.warning("message %s not queued yet (queued again later): %r", work.id, exc)
            self._metrics.published.labels("failed").inc()
            return False
        self._published[uuid.UUID(work.id)] = self._clock()
        self._metrics.published.labels("ok").inc()
        return True

    async def note_traffic(self, *, namespace: str, name: str, bot_id: str) -> None:
        """Write the bot's traffic record, unless this process did within traffic_seconds."""
        now = self._clock()
        last = self._traffic_at.get(bot_id)
        if last is not None and now - last < self._traffic_seconds:
            return
        self._traffic_at[bot_id] = now
        record = BotTraffic(bot_id=bot_id, namespace=namespace, name=name, at=datetime.now(UTC))
        try:
            await self._control.put(subjects.bot_traffic_key(bot_id), encode(record))
        except (NatsError, TimeoutError) as exc:
            self._traffic_at.pop(bot_id, None)  # try again on the next message
            logger.warning("traffic of bot %s not written: %r", bot_id, exc)

    async def republish(self, pool: asyncpg.Pool) -> int:
        """One round over the pending rows the cursor has not passed; how many it queued."""
        now = self._clock()
        for known, at in list(self._published.items()):
            if now - at > _REMEMBER_SECONDS:
                del self._published[known]
        # Rows are visible a moment after their created_at (the insert's start): look back
        # one period before the cursor, so none commits behind it.
        since = self._cursor
        if since is not None:
            since -= timedelta(seconds=self._republish_seconds)
        after: tuple[datetime, uuid.UUID] | None = None
        failed_at: datetime | None = None
        queued = 0
        while True:
            rows, horizon = await postgres.pending_between(
                pool,
                since=since,
                settled_seconds=self._republish_seconds,
                after=after,
                limit=_PAGE,
            )
            for row in rows:
                if row.id in self._published:
                    continue
                if await self.publish(row.bot_id, row.work()):
                    queued += 1
                elif failed_at is None:
                    failed_at = row.created_at
            if len(rows) < _PAGE:
                break
            after = (rows[-1].created_at, rows[-1].id)
        self._cursor = failed_at if failed_at is not None else horizon
        if queued:
            self._metrics.published.labels("republished").inc(queued)
        return queued
