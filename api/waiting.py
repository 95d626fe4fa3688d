"""Learning that messages reached their final state: the senders announce each on
``herald.outcomes.<bot id>`` (core NATS, not kept), and this process listens once for all.

Two subscriptions. Every replica hears every outcome, so a ``?wait=`` request, wherever it
landed, is woken at once (:meth:`Outcomes.waiter`); an announcement lost in a reconnect only
delays it until the waiter's next look at the row. And one replica of all hears each outcome
in the queue group, to act on it once: count its latency and start its callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from herald.core import subjects
from herald.core.envelopes import DecodeError, MessageOutcome, decode

__all__ = ["QUEUE_GROUP", "Outcomes"]

logger = logging.getLogger(__name__)

QUEUE_GROUP = "herald-api"


def _outcome(msg: Msg) -> MessageOutcome | None:
    try:
        return decode(MessageOutcome, msg.data)
    except DecodeError as exc:
        logger.warning("outcome on %s cannot be read: %s", msg.subject, exc)
        return None


class Outcomes:
    """The outcomes announced while this process runs; ``once`` is called with each one
    that this replica is the one to act on."""

    def __init__(self, *, once: Callable[[MessageOutcome], None]) -> None:
        self._once = once
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._subscriptions: list[Subscription] = []

    async def start(self, nats: NatsClient) -> None:
        subject = subjects.outcome_subject("*")
        self._subscriptions = [
            await nats.subscribe(subject, cb=self._wake),
            await nats.subscribe(subject, queue=QUEUE_GROUP, cb=self._act),
        ]

    async def stop(self) -> None:
        for subscription in self._subscriptions:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
        self._subscriptions = []

    @contextlib.contextmanager
    def waiter(self, message_id: str) -> Iterator[asyncio.Event]:
        """An event set when the message's outcome is announced; made before the row is
        read, so an outcome between that read and the wait is not missed."""
        event = asyncio.Event()
        self._waiters.setdefault(message_id, set()).add(event)
        try:
            yield event
        finally:
            waiting = self._waiters.get(message_id)
            if waiting is not None:
                waiting.discard(event)
                if not waiting:
                    del self._waiters[message_id]

    def wake_all(self) -> None:
        for waiting in self._waiters.values():
            for event in waiting:
                event.set()

    async def _wake(self, msg: Msg) -> None:
        outcome = _outcome(msg)
        if outcome is not None:
            for event in self._waiters.get(outcome.id, ()):
                event.set()

    async def _act(self, msg: Msg) -> None:
        outcome = _outcome(msg)
        if outcome is not None:
            self._once(outcome)
