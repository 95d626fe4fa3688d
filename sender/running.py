"""The sender process: watch the control bucket, hold bot leases, and for each bot held run a
:class:`BotWorker` that pulls work, claims rows, paces and sends, records, then acks.

Decisions are made by the pure modules (:mod:`~herald.sender.pacing`,
:mod:`~herald.sender.outcomes`, :mod:`~herald.telegram.rendering`,
:mod:`~herald.sender.leases`, :mod:`~herald.sender.batches`); this module only wires them to
NATS, Postgres and the Bot API (:mod:`~herald.telegram.client`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import nats
import nats.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from herald.core import logs, streams, subjects
from herald.core.broadcasts import Delivery
from herald.core.deliveries import DeliveryState
from herald.core.envelopes import BroadcastState, ControlRecord, FaultRecord, Recipient
from herald.sender import batches, controls, ledgers, pacing
from herald.sender.controls import Controls
from herald.sender.ledgers import Ledger, Row
from herald.sender.metrics import Metrics
from herald.sender.outcomes import Action, Reason, Verdict, judge
from herald.sender.settings import Config, SenderSettings
from herald.telegram.client import TelegramClient
from herald.telegram.rendering import render

__all__ = ["BotWorker", "Recorder", "Sender"]

log = logging.getLogger(__name__)

# Telegram charges 0.1 Star per paid message: a budget of B Stars pays 10 * B messages.
_MESSAGES_PER_STAR = 10
# Claim about this many seconds of sending at a time: large enough that claims cost few round
# trips, small enough that a crash leaves few claimed rows unsent.
_CLAIM_SECONDS = 0.2
_CLAIM_MAX = 100
# Keep about this many seconds of work pulled ahead, so a fetch never stalls the pacing.
_PREFETCH_SECONDS = 2.0
_PREFETCH_MIN = 100
# Work messages per pull request: a few, so a fast broadcast is not one round trip per batch.
_FETCH_BATCH = 4


def _spawn(tasks: set[asyncio.Task[Any]], coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
    task = asyncio.create_task(coro)
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    task.add_done_callback(_log_failure)
    return task


async def _wait(event: asyncio.Event, seconds: float) -> None:
    """Until `event` is set or `seconds` pass. Not asyncio.wait_for: on Python 3.11 it loses
    a cancellation that arrives as the event is set, and a cancelled loop would run on."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("background task failed: %r", error, exc_info=error)


@dataclass(slots=True)
class _Pending:
    uid: str
    row: Row
    then: Callable[[], None] | None


class Recorder:
    """Outcomes wait here a few milliseconds and are written together; callbacks run after
    the write commits, so nothing is acked before the ledger says it is done."""

    def __init__(
        self, ledger: Ledger, *, flush_seconds: float, metrics: Metrics | None = None
    ) -> None:
        self._ledger = ledger
        self._flush_seconds = flush_seconds
        self._metrics = metrics
        self._pending: list[_Pending] = []
        self._writing = 0
        self._lock = asyncio.Lock()

    @property
    def backlog(self) -> int:
        """Outcomes not yet committed: after a crash these rows are claimed but unrecorded."""
        return len(self._pending) + self._writing

    def add(self, uid: str, row: Row, then: Callable[[], None] | None = None) -> None:
        self._pending.append(_Pending(uid, row, then))

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._flush_seconds)
            try:
                await self.flush()
            except ledgers.ERRORS as error:
                if self._metrics is not None:
                    self._metrics.ledger_errors.labels("record").inc()
                # Kept for the next round: the rows stay claimed, nothing is acked meanwhile.
                log.warning("ledger write failed, retrying: %s", error)
                await asyncio.sleep(0.5)

    async def flush(self) -> None:
        async with self._lock:
            if not self._pending:
                return
            taken, self._pending = self._pending, []
            writes: dict[str, list[Row]] = {}
            for pending in taken:
                writes.setdefault(pending.uid, []).append(pending.row)
            self._writing = len(taken)
            try:
                await self._ledger.record(writes)
            except BaseException:
                self._pending[:0] = taken
                raise
            finally:
                self._writing = 0
        for pending in taken:
            if pending.then is not None:
                pending.then()


@dataclass(slots=True)
class _Held:
    msg: Msg
    progress: batches.Progress


@dataclass(slots=True)
class _Broadcast:
    """A broadcast this sender serves: its work, pulled and claimed."""

    record: ControlRecord
    sub: JetStreamContext.PullSubscription | None = None
    held: dict[int, _Held] = field(default_factory=dict)  # by stream sequence
    owner: dict[int, int] = field(default_factory=dict)  # chat id -> stream sequence
    unclaimed: deque[Recipient] = field(default_factory=deque)
    ready: deque[Recipient] = field(default_factory=deque)  # claimed, waiting for a slot
    retries: list[tuple[float, Recipient]] = field(default_factory=list)
    attempts: dict[int, int] = field(default_factory=dict)
    proven: set[str] = field(default_factory=set)  # variants Telegram accepted once
    tripped: bool = False
    stopped: bool = False
    paid_sent: int = 0
    ack_wait: float = 30.0
    want_work: asyncio.Event = field(default_factory=asyncio.Event)
    want_claim: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    claimer: asyncio.Task[Any] | None = None

    @property
    def uid(self) -> str:
        return self.record.uid

    @property
    def active(self) -> bool:
        return self.record.state is BroadcastState.ACTIVE and not self.tripped and not self.stopped


class BotWorker:
    """Everything one bot's lease holder does for the bot's broadcasts."""

    def __init__(
        self,
        *,
        bot_id: str,
        token: str,
        config: Config,
        js: JetStreamContext,
        ledger: Ledger,
        recorder: Recorder,
        controls: Controls,
        metrics: Metrics,
    ) -> None:
        self.bot_id = bot_id
        self._settings: SenderSettings = config.sender
        self._js = js
        self._ledger = ledger
        self._recorder = recorder
        self._controls = controls
        self._metrics = metrics
        self._client = TelegramClient(
            token,
            api_url=config.telegram.api_url,
            timeout=self._settings.request_timeout_seconds,
            connections=self._settings.max_in_flight,
        )
        self._pacer = pacing.Pacer(
            free_limit=self._settings.free_limit, paid_limit=self._settings.paid_limit
        )
        self._broadcasts: dict[str, _Broadcast] = {}
        self._shares_of: tuple[str, ...] = ()
        self._shares_cache: dict[str, float] = {}
        self._wake = asyncio.Event()
        self._in_flight = 0
        self._sends: set[asyncio.Task[Any]] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._acks: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self.lease_until = 0.0
        self._loop = asyncio.get_running_loop()
        self._scheduler = _spawn(self._tasks, self._schedule())

    # --- control -----------------------------------------------------------------------

    def update(self, record: ControlRecord) -> None:
        """A new or changed control record of one of this bot's broadcasts."""
        current = self._broadcasts.get(record.uid)
        if record.state is BroadcastState.STOPPED:
            if current is not None:
                self.drop(record.uid)
            return
        self._pacer.configure(record.uid, record.rate)
        self._shares_of = ()  # the rate may have changed
        if current is None:
            current = _Broadcast(record)
            self._broadcasts[record.uid] = current
            # The broadcast's own tasks log with its namespace and name.
            with logs.broadcast(record.namespace, record.name):
                _spawn(current.tasks, self._feed(current))
                current.claimer = _spawn(current.tasks, self._claim(current))
                _spawn(current.tasks, self._keep_alive(current))
        was_active = current.active
        current.record = record
        if was_active and not current.active:
            # Paused: nothing new leaves; rows claimed but not sent go back to pending.
            self._release(current, requeue=True)
        current.want_work.set()
        current.want_claim.set()
        self._wake.set()

    def drop(self, uid: str) -> None:
        """Stopped or deleted: forget the broadcast's work (the operator purges it)."""
        broadcast = self._broadcasts.pop(uid, None)
        if broadcast is None:
            return
        broadcast.stopped = True
        self._pacer.remove(uid)
        self._release(broadcast, requeue=False)
        for task in broadcast.tasks:
            task.cancel()
        if broadcast.sub is not None:
            _spawn(self._tasks, broadcast.sub.unsubscribe())

    def halt(self, until: datetime) -> None:
        """No send of this bot before `until` (a 429 here or at a previous lease holder)."""
        seconds = (until - datetime.now(UTC)).total_seconds()
        if seconds > 0:
            now = self._loop.time()
            before = max(now, self._pacer.halted_until)
            self._pacer.halt(now + seconds)
            # Counted when the halt starts, and only the time it adds to a running halt.
            self._metrics.rate_limited.inc(max(0.0, self._pacer.halted_until - before))
            # Rows claimed but not sent go back to pending until the halt ends, as on a
            # pause: held through a long retry_after, a crash would leave them uncertain.
            for broadcast in self._broadcasts.values():
                self._release(broadcast, requeue=True)
            self._wake.set()

    @property
    def idle(self) -> bool:
        return not self._broadcasts

    # --- pulling -----------------------------------------------------------------------

    async def _bind(self, broadcast: _Broadcast) -> JetStreamContext.PullSubscription:
        sub = await self._js.pull_subscribe_bind(
            durable=subjects.work_consumer(broadcast.uid), stream=subjects.WORK_STREAM
        )
        info = await sub.consumer_info()
        if info.config.ack_wait:
            broadcast.ack_wait = float(info.config.ack_wait)
        rate = broadcast.record.rate
        if rate.allow_paid_broadcast and rate.stars_budget is not None:
            broadcast.paid_sent = await self._ledger.delivered(broadcast.uid)
        return sub

    def _shares(self) -> dict[str, float]:
        # Asked for on every send; recomputed only when the set of active broadcasts changes.
        active = tuple(uid for uid, other in self._broadcasts.items() if other.active)
        if active != self._shares_of:
            self._shares_of = active
            self._shares_cache = self._pacer.shares(active)
        return self._shares_cache

    def _want(self, broadcast: _Broadcast) -> int:
        shares = self._shares()
        rate = shares.get(broadcast.uid, self._pacer.rate_of(broadcast.uid))
        return max(_PREFETCH_MIN, math.ceil(rate * _PREFETCH_SECONDS))

    async def _feed(self, broadcast: _Broadcast) -> None:
        while True:
            broadcast.want_work.clear()
            queued = len(broadcast.unclaimed) + len(broadcast.ready)
            if self._stopping or not broadcast.active or queued >= self._want(broadcast):
                await broadcast.want_work.wait()
                continue
            try:
                if broadcast.sub is None:
                    broadcast.sub = await self._bind(broadcast)
                messages = await broadcast.sub.fetch(batch=_FETCH_BATCH, timeout=1.0)
            except TimeoutError:
                # Not only nats.errors.TimeoutError: fetch also raises the builtin when its
                # deadline runs out between its two pull requests, and must not end the loop.
                continue
            except nats.errors.Error as error:
                log.warning("pulling work of broadcast %s failed: %s", broadcast.uid, error)
                await asyncio.sleep(1.0)
                continue
            for message in messages:
                await self._admit(broadcast, message)
            broadcast.want_claim.set()

    async def _admit(self, broadcast: _Broadcast, message: Msg) -> None:
        parsed = batches.parse(message.data, uid=broadcast.uid)
        if isinstance(parsed, batches.BadWork):
            self._metrics.bad_work.labels(parsed.reason).inc()
            log.warning(
                "terminating a %s work message of broadcast %s", parsed.reason, broadcast.uid
            )
            await message.term()
            return
        sequence = message.metadata.sequence.stream
        if sequence in broadcast.held:
            # Redelivered while still here: answer on the newest delivery, keep the rows.
            broadcast.held[sequence].msg = message
            return
        progress = batches.Progress.of(parsed)
        broadcast.held[sequence] = _Held(message, progress)
        duplicates = []
        for recipient in parsed.recipients:
            if recipient.chat_id in broadcast.owner:
                duplicates.append(recipient.chat_id)  # another held message carries it
                continue
            broadcast.owner[recipient.chat_id] = sequence
            broadcast.unclaimed.append(recipient)
        if duplicates:
            progress.settle(duplicates)
            if progress.done:
                # A copy of work held here: nothing would ever settle and ack it.
                del broadcast.held[sequence]
                _spawn(self._acks, message.ack())

    async def _keep_alive(self, broadcast: _Broadcast) -> None:
        # Held messages must not be redelivered to another replica while they wait here.
        while True:
            await asyncio.sleep(max(0.5, broadcast.ack_wait / 3))
            for held in list(broadcast.held.values()):
                with contextlib.suppress(nats.errors.Error):
                    await held.msg.in_progress()

    # --- claiming ----------------------------------------------------------------------

    def _claim_size(self, broadcast: _Broadcast) -> int:
        shares = self._shares()
        rate = shares.get(broadcast.uid, self._pacer.rate_of(broadcast.uid))
        return max(1, min(_CLAIM_MAX, math.ceil(rate * _CLAIM_SECONDS)))

    def _claim_budget(self) -> int:
        # Claimed rows not yet sent, and sent rows not yet recorded, count against
        # max_in_flight: a crash leaves at most max_in_flight rows uncertain.
        waiting = sum(len(b.ready) + len(b.retries) for b in self._broadcasts.values())
        unrecorded = self._recorder.backlog
        return self._settings.max_in_flight - self._in_flight - waiting - unrecorded

    async def _claim(self, broadcast: _Broadcast) -> None:
        reclaim = broadcast.record.delivery is Delivery.AT_LEAST_ONCE
        while True:
            if self._stopping:
                return  # see close(): never cancelled while a claim is on its way
            broadcast.want_claim.clear()
            size = min(self._claim_size(broadcast), self._claim_budget())
            halted = self._pacer.halted_until - self._loop.time()
            if (
                not broadcast.active
                or halted > 0
                or not broadcast.unclaimed
                or len(broadcast.ready) >= self._claim_size(broadcast)
                or size <= 0
            ):
                if len(broadcast.unclaimed) < self._want(broadcast) / 2:
                    broadcast.want_work.set()
                # Woken by whatever frees budget or brings rows, or when a halt ends; the
                # timeout is a safety net.
                await _wait(broadcast.want_claim, min(1.0, halted) if halted > 0 else 1.0)
                continue
            taking = [
                broadcast.unclaimed.popleft() for _ in range(min(size, len(broadcast.unclaimed)))
            ]
            by_chat = {recipient.chat_id: recipient for recipient in taking}
            try:
                claims = await self._ledger.claim(broadcast.uid, list(by_chat), reclaim=reclaim)
            except ledgers.ERRORS as error:
                self._metrics.ledger_errors.labels("claim").inc()
                log.warning("claiming rows of broadcast %s failed: %s", broadcast.uid, error)
                broadcast.unclaimed.extendleft(reversed(taking))
                await asyncio.sleep(0.5)
                continue
            self._metrics.claimed.inc(len(claims.claimed))
            if broadcast.active and not self._stopping:
                broadcast.ready.extend(by_chat[chat_id] for chat_id in claims.claimed)
            else:
                # Paused or stopping while the claim was on its way: give the rows back.
                for chat_id in claims.claimed:
                    self._give_back(broadcast, by_chat[chat_id], requeue=not broadcast.stopped)
            self._settle(broadcast, claims.settled)
            self._busy(broadcast, claims.busy)
            self._wake.set()

    # --- sending -----------------------------------------------------------------------

    async def _sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        await _wait(self._wake, min(seconds, 1.0))

    def _sendable(self, broadcast: _Broadcast, now: datetime) -> bool:
        if not broadcast.active:
            return False
        record = broadcast.record
        if record.deadline is not None and now >= record.deadline:
            # Never send after the deadline; the operator reports DeadlineExceeded.
            self._release(broadcast, requeue=False)
            broadcast.tripped = True
            return False
        budget = record.rate.stars_budget if record.rate.allow_paid_broadcast else None
        if budget is not None and broadcast.paid_sent + 1 > budget * _MESSAGES_PER_STAR:
            self._trip(broadcast, Reason.BUDGET_EXHAUSTED, f"the Stars budget of {budget} is spent")
            return False
        return True

    async def _schedule(self) -> None:
        while True:
            self._wake.clear()
            now = self._loop.time()
            wall = datetime.now(UTC)
            next_retry = math.inf
            for broadcast in self._broadcasts.values():
                if broadcast.retries:
                    due = [item for item in broadcast.retries if item[0] <= now]
                    if due:
                        broadcast.retries = [item for item in broadcast.retries if item[0] > now]
                        broadcast.ready.extendleft(recipient for _, recipient in reversed(due))
                    next_retry = min([next_retry, *(at for at, _ in broadcast.retries)])
            if self._stopping:
                return
            heads = {
                uid: broadcast.ready[0].chat_id
                for uid, broadcast in list(self._broadcasts.items())
                if broadcast.ready and self._sendable(broadcast, wall)
            }
            if (
                not heads
                or self._in_flight >= self._settings.max_in_flight
                or now > self.lease_until
            ):
                await self._sleep(min(next_retry - now, 1.0))
                continue
            decision = self._pacer.next(now, heads)
            if isinstance(decision, pacing.Wait):
                await self._sleep(min(decision.until, next_retry) - now)
                continue
            broadcast = self._broadcasts[decision.uid]
            recipient = broadcast.ready.popleft()
            if broadcast.record.rate.allow_paid_broadcast:
                broadcast.paid_sent += 1
            self._in_flight += 1
            self._metrics.in_flight.inc()
            _spawn(self._sends, self._send(broadcast, recipient))
            if len(broadcast.ready) < self._claim_size(broadcast):
                broadcast.want_claim.set()

    async def _send(self, broadcast: _Broadcast, recipient: Recipient) -> None:
        record = broadcast.record
        chat_id = recipient.chat_id
        attempt = broadcast.attempts[chat_id] = broadcast.attempts.get(chat_id, 0) + 1
        rendered = render(
            record.content, recipient, allow_paid_broadcast=record.rate.allow_paid_broadcast
        )
        started = self._loop.time()
        try:
            outcome = await self._client.send(rendered)
        finally:
            self._metrics.send_duration.observe(self._loop.time() - started)
            self._in_flight -= 1
            self._metrics.in_flight.dec()
            self._wake.set()
            # A finished request frees claim budget (claims count against max_in_flight).
            for other in self._broadcasts.values():
                other.want_claim.set()
        self._metrics.messages.labels(outcome.kind.value).inc()
        verdict = judge(
            outcome,
            delivery=record.delivery,
            attempt=attempt,
            proven=rendered.variant in broadcast.proven,
        )
        if verdict.state is DeliveryState.DELIVERED:
            broadcast.proven.add(rendered.variant)
        self._act(broadcast, recipient, verdict, outcome.message_id, outcome.description)

    def _act(
        self,
        broadcast: _Broadcast,
        recipient: Recipient,
        verdict: Verdict,
        message_id: int | None,
        description: str,
    ) -> None:
        chat_id = recipient.chat_id
        if verdict.action in (Action.RECORD, Action.DEACTIVATE):
            self._metrics.recipients.labels(verdict.state.value).inc()
            broadcast.attempts.pop(chat_id, None)
            row = Row(
                chat_id,
                verdict.state,
                verdict.reason,
                message_id,
                deactivate=verdict.action is Action.DEACTIVATE,
            )
            self._recorder.add(broadcast.uid, row, lambda: self._settle(broadcast, [chat_id]))
        elif verdict.action is Action.RETRY:
            broadcast.retries.append((self._loop.time() + verdict.delay, recipient))
            self._wake.set()
        elif verdict.action is Action.HALT_BOT:
            self._metrics.retry_after.observe(verdict.delay)
            broadcast.attempts.pop(chat_id, None)
            until = datetime.now(UTC) + timedelta(seconds=verdict.delay)
            self.halt(until)
            _spawn(self._tasks, self._controls.halt(self.bot_id, until))
            # Back to pending, and retried after the halt through a fresh claim.
            self._give_back(broadcast, recipient, requeue=True)
        else:  # TRIP
            self._give_back(broadcast, recipient, requeue=False)
            self._trip(broadcast, verdict.reason or Reason.CONTENT_REJECTED, description)

    def _trip(self, broadcast: _Broadcast, reason: str, message: str) -> None:
        """The broadcast cannot go on: report it and stop sending it here."""
        if broadcast.tripped:
            return
        broadcast.tripped = True
        self._metrics.faults.labels(reason).inc()
        record = broadcast.record
        log.warning(
            "broadcast %s stopped: %s",
            broadcast.uid,
            reason,
            extra={"namespace": record.namespace, "broadcast": record.name},
        )
        self._release(broadcast, requeue=False)
        fault = FaultRecord(
            uid=broadcast.uid, reason=reason, message=message[:500], at=datetime.now(UTC)
        )
        _spawn(self._tasks, self._controls.fault(fault))

    # --- bookkeeping -------------------------------------------------------------------

    def _give_back(self, broadcast: _Broadcast, recipient: Recipient, *, requeue: bool) -> None:
        def then() -> None:
            if requeue and not broadcast.stopped:
                broadcast.unclaimed.appendleft(recipient)
            broadcast.want_claim.set()

        self._recorder.add(broadcast.uid, Row(recipient.chat_id, DeliveryState.PENDING), then)

    def _release(self, broadcast: _Broadcast, *, requeue: bool) -> None:
        """Rows claimed but not sent go back to pending."""
        waiting = [*broadcast.ready, *(recipient for _, recipient in broadcast.retries)]
        broadcast.ready.clear()
        broadcast.retries.clear()
        for recipient in reversed(waiting):
            self._give_back(broadcast, recipient, requeue=requeue)

    def _settle(self, broadcast: _Broadcast, chat_ids: list[int]) -> None:
        touched = set()
        for chat_id in chat_ids:
            sequence = broadcast.owner.pop(chat_id, None)
            if sequence is not None and sequence in broadcast.held:
                broadcast.held[sequence].progress.settle([chat_id])
                touched.add(sequence)
        for sequence in touched:
            held = broadcast.held[sequence]
            if held.progress.done:
                del broadcast.held[sequence]
                if not broadcast.stopped:
                    _spawn(self._acks, held.msg.ack())
            elif held.progress.stuck:
                self._nak(broadcast, sequence)
        broadcast.want_work.set()
        # Recorded rows free claim budget.
        broadcast.want_claim.set()

    def _busy(self, broadcast: _Broadcast, chat_ids: list[int]) -> None:
        if not chat_ids:
            return
        sequences = {broadcast.owner[chat_id] for chat_id in chat_ids if chat_id in broadcast.owner}
        for sequence in sequences:
            held = broadcast.held[sequence]
            held.progress.mark_busy(chat_ids)
            if held.progress.stuck:
                self._nak(broadcast, sequence)

    def _nak(self, broadcast: _Broadcast, sequence: int) -> None:
        """Another sender holds rows of this message: look again once its claims are old."""
        held = broadcast.held.pop(sequence)
        for chat_id in held.progress.open:
            broadcast.owner.pop(chat_id, None)
        delay = max(1.0, self._settings.claim_ttl_seconds / 4)
        _spawn(self._acks, held.msg.nak(delay=delay))

    # --- stopping ----------------------------------------------------------------------

    async def close(self, deadline: float) -> None:
        """Stop claiming, finish and record in-flight sends, give back the rest."""
        self._stopping = True
        self._wake.set()
        for broadcast in self._broadcasts.values():
            broadcast.want_claim.set()
            broadcast.want_work.set()
        await asyncio.gather(self._scheduler, return_exceptions=True)
        # A claim on its way must come back and give its rows back: cancelled mid-way, it
        # would leave them claimed by a process about to exit, to end uncertain.
        claimers = [b.claimer for b in self._broadcasts.values() if b.claimer is not None]
        if claimers:
            await asyncio.wait(claimers, timeout=max(0.1, deadline - self._loop.time()))
        if self._sends:
            await asyncio.wait(set(self._sends), timeout=max(0.1, deadline - self._loop.time()))
        for broadcast in self._broadcasts.values():
            for task in broadcast.tasks:
                task.cancel()
            self._release(broadcast, requeue=False)
        for broadcast in self._broadcasts.values():
            await asyncio.gather(*broadcast.tasks, return_exceptions=True)
        with contextlib.suppress(*ledgers.ERRORS):
            await self._recorder.flush()
        for broadcast in self._broadcasts.values():
            for held in broadcast.held.values():
                _spawn(self._acks, held.msg.nak())
            broadcast.held.clear()
            if broadcast.sub is not None:
                with contextlib.suppress(nats.errors.Error):
                    await broadcast.sub.unsubscribe()
        if self._acks:
            await asyncio.wait(set(self._acks), timeout=2.0)
        for task in list(self._tasks):
            task.cancel()
        await self._client.close()


class Sender:
    """One sender process."""

    def __init__(self, config: Config, *, metrics: Metrics | None = None) -> None:
        self.config = config
        self.metrics = metrics if metrics is not None else Metrics()
        self._records: dict[str, ControlRecord] = {}
        self._workers: dict[str, BotWorker] = {}
        self._leases_due = asyncio.Event()
        self.ready = asyncio.Event()

    async def run(self, stopping: asyncio.Event) -> None:
        settings = self.config.sender
        client: NatsClient = await nats.connect(
            self.config.nats.url, name=f"herald-sender {settings.id}", max_reconnect_attempts=-1
        )
        pool = await asyncpg.create_pool(
            self.config.database.url.get_secret_value(),
            min_size=self.config.database.min_connections,
            max_size=self.config.database.max_connections,
        )
        try:
            js = client.jetstream()
            await streams.ensure_work_stream(js)
            kv = await streams.ensure_control_bucket(js)
            self._js = js
            self._controls = Controls(kv, me=settings.id, lease_seconds=settings.lease_seconds)
            self._ledger = Ledger(pool, me=settings.id, claim_ttl=settings.claim_ttl_seconds)
            self._recorder = Recorder(
                self._ledger, flush_seconds=settings.flush_seconds, metrics=self.metrics
            )
            control: set[asyncio.Task[Any]] = set()
            _spawn(control, self._watch())
            _spawn(control, self._lease())
            recording = asyncio.create_task(self._recorder.run())
            log.info("sender %s running", settings.id)
            await stopping.wait()
            log.info("sender %s stopping", settings.id)
            await self._shutdown(control, recording)
        finally:
            await pool.close()
            await client.drain()

    async def _shutdown(
        self, control: set[asyncio.Task[Any]], recording: asyncio.Task[None]
    ) -> None:
        loop = asyncio.get_running_loop()
        # Leave a margin of the grace period for the final write and the lease release.
        deadline = loop.time() + max(0.5, self.config.sender.shutdown_seconds - 2.0)
        for task in control:
            task.cancel()
        await asyncio.gather(*control, return_exceptions=True)
        # The recorder keeps writing while the workers finish their in-flight sends.
        await asyncio.gather(
            *(worker.close(deadline) for worker in self._workers.values()), return_exceptions=True
        )
        recording.cancel()
        await asyncio.gather(recording, return_exceptions=True)
        with contextlib.suppress(*ledgers.ERRORS):
            await self._recorder.flush()
        for bot_id in list(self._workers):
            with contextlib.suppress(nats.errors.Error):
                await self._controls.release(bot_id)
        self._workers.clear()

    async def _watch(self) -> None:
        while True:
            try:
                async for change in self._controls.changes():
                    self._apply(change)
            except nats.errors.Error as error:
                log.warning("control watch failed, watching again: %s", error)
                await asyncio.sleep(1.0)

    def _apply(self, change: controls.Change) -> None:
        if isinstance(change, controls.Ready):
            self.ready.set()
        elif isinstance(change, controls.Seen):
            record = change.record
            self._records[record.uid] = record
            if (worker := self._workers.get(record.bot_id)) is not None:
                worker.update(record)
            self._leases_due.set()
        elif isinstance(change, controls.Gone):
            gone = self._records.pop(change.uid, None)
            if gone is not None and (worker := self._workers.get(gone.bot_id)) is not None:
                worker.drop(change.uid)
            self._leases_due.set()
        elif isinstance(change, controls.Halted) and (
            worker := self._workers.get(change.halt.bot_id)
        ):
            worker.halt(change.halt.until)

    async def _lease(self) -> None:
        settings = self.config.sender
        loop = asyncio.get_running_loop()
        while True:
            self._leases_due.clear()
            needed: dict[str, ControlRecord] = {}
            for record in self._records.values():
                if record.state is not BroadcastState.STOPPED:
                    needed.setdefault(record.bot_id, record)
            for bot_id in list(self._workers):
                if bot_id not in needed:
                    await self._retire(bot_id, release=True)
            for bot_id, record in needed.items():
                started = loop.time()
                try:
                    held = await self._controls.hold(bot_id)
                except nats.errors.Error as error:
                    # Keep sending until the lease we hold would have expired.
                    log.warning("renewing the lease of bot %s failed: %s", bot_id, error)
                    continue
                worker = self._workers.get(bot_id)
                if not held:
                    if worker is not None:
                        log.warning("lost the lease of bot %s", bot_id)
                        await self._retire(bot_id, release=False)
                    continue
                if worker is None:
                    worker = await self._hire(bot_id, record)
                # Valid a second less than written, for the time the write took and skew.
                worker.lease_until = started + settings.lease_seconds - 1.0
            self.metrics.bots.set(len(self._workers))
            await _wait(self._leases_due, settings.lease_seconds / 5)

    async def _hire(self, bot_id: str, record: ControlRecord) -> BotWorker:
        worker = BotWorker(
            bot_id=bot_id,
            token=record.token.get_secret_value(),
            config=self.config,
            js=self._js,
            ledger=self._ledger,
            recorder=self._recorder,
            controls=self._controls,
            metrics=self.metrics,
        )
        self._workers[bot_id] = worker
        log.info("holding the lease of bot %s", bot_id)
        if (halt := await self._controls.halt_of(bot_id)) is not None:
            worker.halt(halt.until)
        for other in self._records.values():
            if other.bot_id == bot_id:
                worker.update(other)
        return worker

    async def _retire(self, bot_id: str, *, release: bool) -> None:
        worker = self._workers.pop(bot_id)
        loop = asyncio.get_running_loop()
        await worker.close(loop.time() + self.config.sender.request_timeout_seconds)
        if release:
            await self._controls.release(bot_id)
