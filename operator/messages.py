"""The operator's part in transactional messages: each verified bot's durable consumer
``messages-<bot id>``, the watch of herald-api's traffic records (which keeps a sender
running, :mod:`~herald.operator.scaling`), and the sweep of the ``messages`` table.

The sweep settles what no sender will: a claim older than ``message_claim_ttl_seconds`` was
left by a sender that died between claim and answer, so the message may have been sent and
ends uncertain, never sent again; a pending message past its deadline ends failed. Either
way its callback falls due, as when a sender records an outcome.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import nats.errors
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from herald.core import subjects
from herald.core.envelopes import BotTraffic, DecodeError, decode
from herald.operator.connections import Connections
from herald.operator.planning import Reason
from herald.operator.settings import OperatorSettings
from herald.operator.waiting import Unavailable

__all__ = [
    "ACK_WAIT_SECONDS",
    "SENDER_LOST",
    "Swept",
    "ensure_consumer",
    "sweep",
    "sweep_forever",
    "watch_traffic",
]

logger = logging.getLogger(__name__)

# The holder of a bot keeps the messages it holds alive (in progress), so this is how long
# the messages a killed sender held wait before the next holder gets them: a few lease
# periods, not the broadcasts' 30 s, since someone waits for each of these.
ACK_WAIT_SECONDS = 10.0
# The ledger's word for a claim whose sender died (the sender's for broadcasts, the same).
SENDER_LOST = "SenderLost"
# A bot's traffic record this old belongs to a Bot long quiet or gone: purged, so senders
# starting up do not read it again and again.
_TRAFFIC_KEPT = timedelta(days=1)
_TRAFFIC = subjects.bot_traffic_key("")

# Both settlements in one statement each, their callbacks due at once.
_SETTLE = """
UPDATE messages
SET state = $1,
    reason = $2,
    callback_state = CASE WHEN callback_url IS NOT NULL THEN 'pending' ELSE callback_state END,
    callback_next_at = CASE WHEN callback_url IS NOT NULL THEN now() ELSE callback_next_at END
WHERE state IN ('pending', 'claimed') AND {}
"""
_STALE_CLAIMS = _SETTLE.format(
    "state = 'claimed' AND claimed_at < now() - make_interval(secs => $3)"
)
_PAST_DEADLINE = _SETTLE.format("state = 'pending' AND deadline <= now()")


async def ensure_consumer(js: JetStreamContext, bot_id: str) -> bool:
    """The bot's durable pull consumer of transactional messages, created if missing; True
    when it was. Created before the Bot's record is published, so herald-api never queues a
    message nobody will pull (and the stream keeps any queued earlier: DeliverPolicy ALL)."""
    try:
        await js.consumer_info(subjects.MESSAGES_STREAM, subjects.message_consumer(bot_id))
    except NotFoundError:
        pass
    else:
        return False
    await js.add_consumer(
        subjects.MESSAGES_STREAM,
        ConsumerConfig(
            durable_name=subjects.message_consumer(bot_id),
            filter_subject=subjects.message_subject(bot_id),
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=ACK_WAIT_SECONDS,
            # Unlimited: a halted or stopping sender naks its messages back, and terminates
            # what it cannot use itself.
            max_deliver=-1,
        ),
    )
    return True


@dataclass(frozen=True)
class Swept:
    uncertain: int
    failed: int


async def sweep(connection: asyncpg.Connection | asyncpg.Pool, *, claim_ttl: float) -> Swept:
    """Stale claims to uncertain, pending messages past their deadline to failed."""
    lost: str = await connection.execute(_STALE_CLAIMS, "uncertain", SENDER_LOST, float(claim_ttl))
    late: str = await connection.execute(_PAST_DEADLINE, "failed", Reason.DEADLINE_EXCEEDED.value)
    return Swept(uncertain=_count(lost), failed=_count(late))


def _count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


async def sweep_forever(
    c: Connections, settings: OperatorSettings, traffic: MutableMapping[str, datetime]
) -> None:
    """Every ``message_sweep_seconds``: the sweep, and the purge of long-quiet traffic."""
    while True:
        await asyncio.sleep(settings.message_sweep_seconds)
        try:
            async with c.database("sweeping transactional messages"):
                swept = await sweep(c.pool, claim_ttl=settings.message_claim_ttl_seconds)
        except Unavailable as exc:
            logger.warning("Sweeping transactional messages: %s", exc.wait.message)
        else:
            if swept.uncertain:
                logger.warning(
                    "%d transactional messages left claimed by a sender that stopped are "
                    "uncertain.",
                    swept.uncertain,
                )
            if swept.failed:
                logger.info("%d transactional messages passed their deadline.", swept.failed)
        await _purge_quiet(c, traffic)


async def _purge_quiet(c: Connections, traffic: MutableMapping[str, datetime]) -> None:
    horizon = datetime.now(UTC) - _TRAFFIC_KEPT
    for bot_id, at in list(traffic.items()):
        if at >= horizon:
            continue
        try:
            async with c.nats("purging a bot's old traffic record"):
                await c.kv.purge(subjects.bot_traffic_key(bot_id))
        except Unavailable as exc:
            logger.warning("Purging old traffic records: %s", exc.wait.message)
            return
        traffic.pop(bot_id, None)


async def watch_traffic(kv: KeyValue, traffic: MutableMapping[str, datetime]) -> None:
    """Keep ``traffic`` (bot id -> when herald-api last took a message for it) up to date
    from the bucket's ``traffic.<bot id>`` records."""
    while True:
        try:
            watcher = await kv.watch(subjects.bot_traffic_key("*"))
            try:
                async for entry in watcher:
                    if entry is None:
                        continue  # the records there were are all read
                    bot_id = entry.key.removeprefix(_TRAFFIC)
                    if entry.operation in (KV_DEL, KV_PURGE) or not entry.value:
                        traffic.pop(bot_id, None)
                        continue
                    try:
                        traffic[bot_id] = decode(BotTraffic, entry.value).at
                    except DecodeError as exc:
                        logger.warning(
                            "Ignoring an unreadable traffic record %s: %s", entry.key, exc
                        )
            finally:
                await watcher.stop()  # type: ignore[no-untyped-call]
        except nats.errors.Error as exc:
            logger.warning("Watching bots' transactional traffic failed, watching again: %s", exc)
            await asyncio.sleep(1.0)
