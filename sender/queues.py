"""One broadcast's work as the sender holding its bot keeps it.

Work messages come from the broadcast's durable consumer and are held, kept alive with
in_progress so JetStream does not hand them to another replica meanwhile, until every row
of them is settled in the ledger: then acked. A message whose open rows are all claimed by
another sender is nak'ed with a delay, to be looked at again once those claims are old. The
rows wait here in order: unclaimed, claimed and ready for a send slot, or due for a retry.
What to claim and when to send is :mod:`herald.sender.sending`'s to decide.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from herald.core import subjects
from herald.core.envelopes import Recipient
from herald.sender import batches
from herald.sender.metrics import Metrics
from herald.sender.tasks import spawn

__all__ = ["WorkQueue"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Held:
    msg: Msg
    progress: batches.Progress


class WorkQueue:
    """The work messages and rows of one broadcast held here."""

    def __init__(
        self,
        js: JetStreamContext,
        uid: str,
        *,
        acks: set[asyncio.Task[Any]],
        nak_delay: float,
        metrics: Metrics,
    ) -> None:
        self.uid = uid
        self._js = js
        self._acks = acks  # acks and naks on their way, awaited when the sender stops
        self._nak_delay = nak_delay
        self._metrics = metrics
        self._sub: JetStreamContext.PullSubscription | None = None
        self._held: dict[int, _Held] = {}  # by stream sequence
        self._owner: dict[int, int] = {}  # chat id -> stream sequence
        self.unclaimed: deque[Recipient] = deque()
        self.ready: deque[Recipient] = deque()  # claimed, waiting for a slot
        self._retries: list[tuple[float, Recipient]] = []
        self.ack_wait = 30.0
        self.stopped = False

    # --- rows ----------------------------------------------------------------------------

    @property
    def queued(self) -> int:
        """Rows here that wait to be claimed or sent."""
        return len(self.unclaimed) + len(self.ready)

    @property
    def claimed(self) -> int:
        """Rows claimed and not sent: ready ones and retries."""
        return len(self.ready) + len(self._retries)

    def take(self, count: int) -> list[Recipient]:
        """Up to `count` unclaimed rows, in order, to claim."""
        return [self.unclaimed.popleft() for _ in range(min(count, len(self.unclaimed)))]

    def untake(self, recipients: list[Recipient]) -> None:
        """Rows taken to claim and not claimed: back to the front, in order."""
        self.unclaimed.extendleft(reversed(recipients))

    def retry(self, at: float, recipient: Recipient) -> None:
        """A claimed row to send again at `at` (loop time)."""
        self._retries.append((at, recipient))

    def due(self, now: float) -> float:
        """Retries due by `now` move to the front of the ready rows; when the next one is due."""
        if not self._retries:
            return math.inf
        due = [item for item in self._retries if item[0] <= now]
        if due:
            self._retries = [item for item in self._retries if item[0] > now]
            self.ready.extendleft(recipient for _, recipient in reversed(due))
        return min((at for at, _ in self._retries), default=math.inf)

    def release(self) -> list[Recipient]:
        """Every claimed row not sent, taken out in order: ready ones, then retries."""
        waiting = [*self.ready, *(recipient for _, recipient in self._retries)]
        self.ready.clear()
        self._retries.clear()
        return waiting

    def stop(self) -> None:
        """Stopped or deleted: what settles from now on is not acked (the operator purges)."""
        self.stopped = True

    # --- work messages -------------------------------------------------------------------

    @property
    def bound(self) -> bool:
        return self._sub is not None

    async def bind(self) -> None:
        sub = await self._js.pull_subscribe_bind(
            durable=subjects.work_consumer(self.uid), stream=subjects.WORK_STREAM
        )
        info = await sub.consumer_info()
        if info.config.ack_wait:
            self.ack_wait = float(info.config.ack_wait)
        self._sub = sub

    async def pull(self, batch: int) -> None:
        """Up to `batch` work messages, waiting a second at most; their rows join the queue."""
        if self._sub is None:
            raise RuntimeError("pull before bind")
        for message in await self._sub.fetch(batch=batch, timeout=1.0):
            await self._admit(message)

    async def _admit(self, message: Msg) -> None:
        parsed = batches.parse(message.data, uid=self.uid)
        if isinstance(parsed, batches.BadWork):
            self._metrics.bad_work.labels(parsed.reason).inc()
            log.warning("terminating a %s work message of broadcast %s", parsed.reason, self.uid)
            await message.term()
            return
        sequence = message.metadata.sequence.stream
        if sequence in self._held:
            # Redelivered while still here: answer on the newest delivery, keep the rows.
            self._held[sequence].msg = message
            return
        progress = batches.Progress.of(parsed)
        self._held[sequence] = _Held(message, progress)
        duplicates = []
        for recipient in parsed.recipients:
            if recipient.chat_id in self._owner:
                duplicates.append(recipient.chat_id)  # another held message carries it
                continue
            self._owner[recipient.chat_id] = sequence
            self.unclaimed.append(recipient)
        if duplicates:
            progress.settle(duplicates)
            if progress.done:
                # A copy of work held here: nothing would ever settle and ack it.
                del self._held[sequence]
                spawn(self._acks, message.ack())

    async def keep_alive(self) -> None:
        # Held messages must not be redelivered to another replica while they wait here.
        while not self.stopped:
            await asyncio.sleep(max(0.5, self.ack_wait / 3))
            for held in list(self._held.values()):
                with contextlib.suppress(nats.errors.Error):
                    await held.msg.in_progress()

    def settle(self, chat_ids: Iterable[int]) -> None:
        """These rows are terminal in the ledger: a message with none left open is acked."""
        touched = set()
        for chat_id in chat_ids:
            sequence = self._owner.pop(chat_id, None)
            if sequence is not None and sequence in self._held:
                self._held[sequence].progress.settle([chat_id])
                touched.add(sequence)
        for sequence in touched:
            held = self._held[sequence]
            if held.progress.done:
                del self._held[sequence]
                if not self.stopped:
                    spawn(self._acks, held.msg.ack())
            elif held.progress.stuck:
                self._nak(sequence)

    def busy(self, chat_ids: list[int]) -> None:
        """These rows are claimed by another live sender."""
        if not chat_ids:
            return
        sequences = {self._owner[chat_id] for chat_id in chat_ids if chat_id in self._owner}
        for sequence in sequences:
            held = self._held[sequence]
            held.progress.mark_busy(chat_ids)
            if held.progress.stuck:
                self._nak(sequence)

    def _nak(self, sequence: int) -> None:
        """Another sender holds rows of this message: look again once its claims are old."""
        held = self._held.pop(sequence)
        for chat_id in held.progress.open:
            self._owner.pop(chat_id, None)
        spawn(self._acks, held.msg.nak(delay=self._nak_delay))

    async def unsubscribe(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()

    async def let_go(self) -> None:
        """The sender stops: every held message goes back to the stream now, not when its ack
        wait runs out, so the next holder of the bot gets it at once."""
        for held in self._held.values():
            spawn(self._acks, held.msg.nak())
        self._held.clear()
        with contextlib.suppress(nats.errors.Error):
            await self.unsubscribe()
