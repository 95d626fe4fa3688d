"""The Bots the operator verified, as the control bucket holds them: a watch of the
``bot.<namespace>.<name>`` keys, handed on as the whole set of records each time it changes.

The whole set, not each change: the first set is every record there is, once the watch has
caught up, so a watch started again replaces what was known, and a Bot deleted meanwhile is
not served on. The operator writes a record only when it changed and purges it when the Bot
is gone or its token fails; both are seen here within a moment.

The bot and herald-api both follow the records (the bot to serve the Bots, herald-api to know
which Bots take messages, their ids and callback secrets): :func:`follow` is the watch for
the life of the process, watched again after each failure.

The bot's and herald-api's NATS users may read the bot records and nothing else of the
bucket (docs/nats.md), which a grant can only say of a consumer created by name: the filter
is then part of the request's subject. nats-py's ``KeyValue.watch`` creates its consumer
unnamed (and its ordered consumer would re-create one under the same name after a gap), so
the watch here is its own: one ephemeral push consumer with a fresh name, last record per
key first. It cannot repair a gap, so it looks for one: a delivery out of sequence, or,
after a quiet spell, the server having delivered more than arrived (a reconnect drops what
was pushed meanwhile) ends the watch with :class:`WatchLost`, and the caller watches again,
from a whole new set.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, ConsumerInfo, DeliverPolicy
from nats.js.kv import KV_DEL, KV_MARKER_REASON, KV_OP, KV_PURGE

from herald.core import subjects
from herald.core.envelopes import BotRecord, DecodeError, decode
from herald.core.permissions import Component

__all__ = ["WatchLost", "follow", "records"]

logger = logging.getLogger(__name__)

_STREAM = f"KV_{subjects.CONTROL_BUCKET}"
_KEYS = f"$KV.{subjects.CONTROL_BUCKET}."
# A quiet watch asks the server this often whether anything was delivered that never came.
_CHECK_SECONDS = 10.0
# An abandoned consumer (the process gone, or cut off this long) is removed by the server.
_INACTIVE_SECONDS = 60.0
# A failed watch is started again after this pause, so a NATS outage is not a busy loop.
_RETRY_SECONDS = 1.0


class WatchLost(Exception):
    """Records were delivered that this watch did not get: watch again."""


def _consumer(component: Component) -> ConsumerConfig:
    # Named after its component, for whoever reads the server's list of consumers.
    return ConsumerConfig(
        name=f"herald-{component.value}-records-{secrets.token_hex(6)}",
        deliver_policy=DeliverPolicy.LAST_PER_SUBJECT,
        ack_policy=AckPolicy.NONE,
        max_deliver=1,
        mem_storage=True,
        num_replicas=1,
        inactive_threshold=_INACTIVE_SECONDS,
    )


def _delivered(info: ConsumerInfo) -> int:
    """How many deliveries the server pushed to the consumer so far."""
    return info.delivered.consumer_seq if info.delivered is not None else 0


def _apply(known: dict[str, BotRecord], msg: Msg) -> None:
    key = msg.subject.removeprefix(_KEYS)
    headers = msg.headers or {}
    if headers.get(KV_OP) in (KV_DEL, KV_PURGE) or KV_MARKER_REASON in headers or not msg.data:
        known.pop(key, None)
        return
    try:
        record = decode(BotRecord, msg.data)
    except DecodeError as exc:
        # Not served rather than served on stale data: a newer operator's record this
        # version cannot read says the Bot changed.
        logger.warning("Bot record %s cannot be read: %s", key, exc)
        known.pop(key, None)
        return
    if record.key != key:
        logger.warning("Bot record under %s is %s's", key, record.key)
        known.pop(key, None)
        return
    known[key] = record


async def records(
    js: JetStreamContext, *, component: Component, check_seconds: float = _CHECK_SECONDS
) -> AsyncIterator[dict[str, BotRecord]]:
    """Every Bot record by key once the watch caught up, then again after each change."""
    subscription = await js.subscribe(
        _KEYS + subjects.BOT_RECORDS,
        stream=_STREAM,
        config=_consumer(component),
        manual_ack=True,
    )
    try:
        known: dict[str, BotRecord] = {}
        seen = 0  # the consumer sequence of the last delivery taken
        info = await subscription.consumer_info()
        # Nothing there, nothing pushed: an empty set is the first set. Else the delivery
        # after which nothing is pending is the last of the first set.
        caught_up = info.num_pending == 0 and _delivered(info) == 0
        if caught_up:
            yield {}
        while True:
            try:
                msg = await subscription.next_msg(timeout=check_seconds)
            except nats.errors.TimeoutError:
                info = await subscription.consumer_info()
                lost = _delivered(info) - seen - subscription.pending_msgs
                if lost > 0:
                    raise WatchLost(f"{lost} deliveries never arrived") from None
                continue
            meta = msg.metadata
            if meta.sequence.consumer != seen + 1:
                raise WatchLost(f"delivery {meta.sequence.consumer} came after {seen}")
            seen = meta.sequence.consumer
            _apply(known, msg)
            if not caught_up and meta.num_pending == 0:
                caught_up = True
            if caught_up:
                yield dict(known)
    finally:
        await subscription.unsubscribe()


async def follow(
    js: JetStreamContext,
    *,
    component: Component,
    apply: Callable[[dict[str, BotRecord]], Awaitable[None]],
) -> None:
    """Hand every set of :func:`records` to ``apply`` until cancelled, watching again (from a
    whole new set) after a lost watch or a NATS error."""
    while True:
        try:
            async for found in records(js, component=component):
                await apply(found)
        except (nats.errors.Error, WatchLost) as exc:
            logger.warning("The Bot records watch failed, watching again: %s", exc)
        await asyncio.sleep(_RETRY_SECONDS)
