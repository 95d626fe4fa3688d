"""What the holder of one bot's lease does for the bot: a :class:`BotWorker` pulls its
broadcasts' work ahead, claims rows shortly before their slot, schedules each send through
the pacer, sends, and acts on the verdict; the bot's transactional messages share the pacer
and the in-flight budget through the worker's :class:`~herald.sender.messaging.MessageLane`,
and go first.

Over 400 lines because the worker is one class: its loops (pull, claim, schedule, send)
share one bot's in-flight budget, pacer, broadcasts and wake-up, and wake each other; apart,
they would pass all of that between them. What is not that sharing lives elsewhere: the
decisions in the pure modules (:mod:`~herald.sender.pacing`, :mod:`~herald.sender.gating`,
:mod:`~herald.sender.outcomes`, :mod:`~herald.telegram.rendering`), each broadcast's work
messages and rows in its :class:`~herald.sender.queues.WorkQueue`, the way to the ledger in
the :class:`~herald.sender.recording.Recorder`, the transactional messages in
:mod:`~herald.sender.messaging`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import nats.errors
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from herald.core import logs
from herald.core.broadcasts import Delivery
from herald.core.contents import Content
from herald.core.corrections import corrected, correction_key
from herald.core.deliveries import Amendment, DeliveryState
from herald.core.envelopes import (
    BotRecord,
    BotSpend,
    BroadcastState,
    ControlRecord,
    FaultReason,
    FaultRecord,
    Recipient,
    SendLimits,
)
from herald.core.sealing import KeyRing, SealError
from herald.sender import gating, ledgers, pacing, tasks
from herald.sender.controls import Controls
from herald.sender.gating import Gate
from herald.sender.ledgers import Ledger, Row, ToAmend
from herald.sender.marking import Marker
from herald.sender.messaging import Held, MessageLane
from herald.sender.metrics import Metrics
from herald.sender.outcomes import Action, Verdict, judge, judge_amend, judge_unsent
from herald.sender.queues import WorkQueue
from herald.sender.recording import Recorder
from herald.sender.settings import Config, SenderSettings
from herald.telegram.client import TelegramClient
from herald.telegram.outcomes import Outcome
from herald.telegram.rendering import (
    Rendered,
    render,
    render_delete,
    render_delete_all,
    render_edit,
)

__all__ = ["BotWorker"]

log = logging.getLogger(__name__)

# Claim about this many seconds of sending at a time: large enough that claims cost few round
# trips, small enough that a crash leaves few claimed rows unsent.
_CLAIM_SECONDS = 0.2
_CLAIM_MAX = 100
# Keep about this many seconds of work pulled ahead, so a fetch never stalls the pacing.
_PREFETCH_SECONDS = 2.0
_PREFETCH_MIN = 100
# Work messages per pull request: a few, so a fast broadcast is not one round trip per batch.
_FETCH_BATCH = 4


@dataclass(slots=True)
class _Broadcast:
    """A broadcast this sender serves."""

    record: ControlRecord
    work: WorkQueue
    client: TelegramClient  # with the token of its record
    attempts: dict[int, int] = field(default_factory=dict)
    proven: set[str] = field(default_factory=set)  # variants Telegram accepted once
    tripped: bool = False
    tripped_by: FaultReason | None = None
    paid_sent: int = 0
    want_work: asyncio.Event = field(default_factory=asyncio.Event)
    want_claim: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    claimer: asyncio.Task[Any] | None = None
    # Delivered rows claimed for their deletion or edit, waiting for a slot, and what they
    # were claimed for: (recall, correction key).
    amends: deque[ToAmend] = field(default_factory=deque)
    amends_for: tuple[bool, str | None] = (False, None)
    amend_attempts: dict[int, int] = field(default_factory=dict)
    want_amend: asyncio.Event = field(default_factory=asyncio.Event)
    # What `outgoing` worked out, and for which record: once per record, not per message.
    _outgoing_of: tuple[ControlRecord, Content, str | None] | None = None

    @property
    def uid(self) -> str:
        return self.record.uid

    @property
    def outgoing(self) -> tuple[Content, str | None]:
        """What is sent from now on: the content with the correction in force applied, and
        the ledger's key of that correction (None: none is)."""
        memo = self._outgoing_of
        if memo is None or memo[0] is not self.record:
            record = self.record
            key = correction_key(record.correction) if record.correction is not None else None
            memo = (record, corrected(record.content, record.correction), key)
            self._outgoing_of = memo
        return memo[1], memo[2]

    @property
    def stopped(self) -> bool:
        return self.work.stopped

    @property
    def active(self) -> bool:
        """Whether new messages may leave: recalled, nothing more is sent."""
        return (
            self.record.state is BroadcastState.ACTIVE
            and not self.record.recall
            and not self.tripped
            and not self.stopped
        )

    @property
    def amending(self) -> tuple[bool, str | None]:
        """What its delivered rows are to become now: (recall, correction key)."""
        record = self.record
        if record.recall:
            return True, None
        return False, self.outgoing[1]

    @property
    def amendable(self) -> bool:
        """Whether delivered messages may be deleted or edited now: while sending, or once
        sending is over (not while paused, which holds every request of the broadcast)."""
        recall, key = self.amending
        return (
            (recall or key is not None)
            and self.record.state in (BroadcastState.ACTIVE, BroadcastState.AMENDING)
            and not self.tripped
            and not self.stopped
        )


class BotWorker:
    """Everything one bot's lease holder does for the bot's broadcasts and transactional
    messages."""

    def __init__(
        self,
        *,
        bot_id: str,
        ring: KeyRing,
        config: Config,
        js: JetStreamContext,
        nc: NatsClient,
        ledger: Ledger,
        recorder: Recorder,
        controls: Controls,
        metrics: Metrics,
        vitals: tasks.Vitals,
    ) -> None:
        self.bot_id = bot_id
        self._vitals = vitals
        self._settings: SenderSettings = config.sender
        self._js = js
        self._nc = nc
        self._ledger = ledger
        self._recorder = recorder
        self._controls = controls
        self._metrics = metrics
        self._ring = ring
        self._api_url = config.telegram.api_url
        # One HTTP session per token: each broadcast sends with the token of its own record,
        # so a rotated token is used from the first record written after the rotation.
        self._clients: dict[str, TelegramClient] = {}
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
        self._marker = Marker(ledger, clock=self._loop.time, on_done=self._wake.set)
        self._scheduler = tasks.spawn(
            self._tasks, self._schedule(), vital=(vitals, f"the scheduler of bot {bot_id}")
        )
        # The bot's limits: its broadcasts' records carry them, and its Bot's record for a
        # bot with transactional messages alone (see _limit).
        self._limits: SendLimits | None = None
        self._broadcast_limits: SendLimits | None = None
        self._bot_limits: SendLimits | None = None
        # Transactional messages, while the bot has a record that opens (see update_bot).
        self._lane: MessageLane | None = None
        self._bot_client: TelegramClient | None = None
        # The bot's paid messages today (UTC), against its Bot's daily Stars budget: counted
        # here, kept in the control bucket for the next lease holder.
        self._spend = BotSpend(bot_id=bot_id, day=_today(), paid=0)
        self._spend_kept = True
        tasks.spawn(self._tasks, self._keep_spend())

    def _client_for(self, token: str) -> TelegramClient:
        client = self._clients.get(token)
        if client is None:
            client = self._clients[token] = TelegramClient(
                token,
                api_url=self._api_url,
                timeout=self._settings.request_timeout_seconds,
                connections=self._settings.max_in_flight,
            )
        return client

    # --- control -----------------------------------------------------------------------

    def update(self, record: ControlRecord) -> None:
        """A new or changed control record of one of this bot's broadcasts."""
        current = self._broadcasts.get(record.uid)
        if record.state is BroadcastState.STOPPED:
            if current is not None:
                self.drop(record.uid)
            return
        try:
            token = record.open_token(self._ring)
        except SealError as error:
            log.error("cannot open the token of %s/%s: %s", record.namespace, record.name, error)
            if current is not None:
                self.drop(record.uid)
            return
        client = self._client_for(token)
        vitals = self._vitals
        self._pacer.configure(record.uid, record.rate)
        self._shares_of = ()  # the rate may have changed
        if current is None:
            work = WorkQueue(
                self._js,
                record.uid,
                acks=self._acks,
                nak_delay=max(1.0, self._settings.claim_ttl_seconds / 4),
                metrics=self._metrics,
            )
            current = _Broadcast(record, work, client)
            self._broadcasts[record.uid] = current
            # The broadcast's own tasks log with its namespace and name.
            with logs.broadcast(record.namespace, record.name):
                of = f"of {record.namespace}/{record.name}"
                tasks.spawn(current.tasks, self._feed(current), vital=(vitals, f"the feed {of}"))
                current.claimer = tasks.spawn(
                    current.tasks, self._claim(current), vital=(vitals, f"the claims {of}")
                )
                tasks.spawn(
                    current.tasks, work.keep_alive(), vital=(vitals, f"the keep-alive {of}")
                )
                tasks.spawn(
                    current.tasks, self._claim_amends(current), vital=(vitals, f"the amends {of}")
                )
        was_active = current.active
        if current.client is not client:
            log.info("%s/%s: sending with a new token", record.namespace, record.name)
            if current.tripped_by is FaultReason.BOT_UNAUTHORIZED:
                current.tripped, current.tripped_by = False, None  # the token Telegram refused
        if current.tripped_by is FaultReason.DAILY_BUDGET_EXHAUSTED and self._spend.day != _today():
            current.tripped, current.tripped_by = False, None  # a new day, a new budget
        current.record, current.client = record, client
        if record.limits is not None:
            self._broadcast_limits = record.limits
        self._limit()
        if was_active and not current.active:
            # Paused: nothing new leaves; rows claimed but not sent go back to pending.
            self._release(current, requeue=True)
        if current.amends and (current.amends_for != current.amending or not current.amendable):
            # Claimed for another correction, or for none any more: free them.
            self._release_amends(current)
        current.want_amend.set()
        current.want_work.set()
        current.want_claim.set()
        self._wake.set()

    def update_bot(self, record: BotRecord | None) -> None:
        """The bot's own record, which its transactional messages are sent with; None when
        there is none (any more) whose token opens here: no transactional messages then."""
        token = None
        if record is not None:
            try:
                token = record.open_token(self._ring)
            except SealError as error:
                log.error(
                    "cannot open the token of Bot %s/%s: %s", record.namespace, record.name, error
                )
        if record is None or token is None:
            self._bot_client, self._bot_limits = None, None
            self._limit()
            if self._lane is not None:
                tasks.spawn(self._tasks, self._lane.close())
                self._lane = None
            return
        # A broadcast sending with the same token shares its HTTP session.
        self._bot_client = self._client_for(token)
        self._bot_limits = record.limits
        self._limit()
        if self._lane is None:
            self._lane = MessageLane(
                bot_id=self.bot_id,
                js=self._js,
                nc=self._nc,
                ledger=self._ledger,
                metrics=self._metrics,
                vitals=self._vitals,
                wake=self._wake.set,
                acks=self._acks,
            )

    def _limit(self) -> None:
        """The pacer's ceilings: the broadcasts' records' limits while the bot has broadcasts,
        else its Bot record's (the same spec.limits, written by the operator)."""
        limits = (self._broadcast_limits if self._broadcasts else None) or self._bot_limits
        self._limits = limits
        if limits is not None:
            self._pacer.limit(
                free=limits.messages_per_second,
                paid=limits.paid_messages_per_second or limits.messages_per_second,
            )

    def drop(self, uid: str) -> None:
        """Stopped or deleted: forget the broadcast's work (the operator purges it)."""
        broadcast = self._broadcasts.pop(uid, None)
        if broadcast is None:
            return
        self._limit()
        broadcast.work.stop()
        self._pacer.remove(uid)
        self._release(broadcast, requeue=False)
        self._release_amends(broadcast)
        for task in broadcast.tasks:
            # A claim on its way comes back and gives its rows back (see close): cancelled
            # mid-way, it would leave them claimed until the operator closes them as stale.
            if task is not broadcast.claimer:
                task.cancel()
        # A loop whose cancellation a NATS call lost (asyncio.wait_for on Python 3.11) wakes,
        # sees the broadcast stopped and ends, instead of waiting for an event nobody sets
        # until it is destroyed pending.
        broadcast.want_work.set()
        broadcast.want_claim.set()
        broadcast.want_amend.set()
        tasks.spawn(self._tasks, self._forget(broadcast))

    async def _forget(self, broadcast: _Broadcast) -> None:
        await asyncio.gather(*broadcast.tasks, return_exceptions=True)
        await broadcast.work.unsubscribe()

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
            if self._lane is not None:
                self._lane.halt(self._pacer.halted_until)
            self._wake.set()

    def _halt_for(self, seconds: float) -> None:
        """A 429 here: halt the bot for every replica for its retry_after."""
        self._metrics.retry_after.observe(seconds)
        until = datetime.now(UTC) + timedelta(seconds=seconds)
        self.halt(until)
        tasks.spawn(self._tasks, self._controls.halt(self.bot_id, until))

    # --- pulling -----------------------------------------------------------------------

    def _shares(self) -> dict[str, float]:
        # Asked for on every send; recomputed only when the set of active broadcasts changes.
        active = tuple(uid for uid, other in self._broadcasts.items() if other.active)
        if active != self._shares_of:
            self._shares_of = active
            self._shares_cache = self._pacer.shares(active)
        return self._shares_cache

    def _rate(self, broadcast: _Broadcast) -> float:
        """The broadcast's share of the bot while it is active, else its own rate."""
        share = self._shares().get(broadcast.uid)
        return share if share is not None else self._pacer.rate_of(broadcast.uid)

    def _want(self, broadcast: _Broadcast) -> int:
        return max(_PREFETCH_MIN, math.ceil(self._rate(broadcast) * _PREFETCH_SECONDS))

    async def _feed(self, broadcast: _Broadcast) -> None:
        work = broadcast.work
        while not (self._stopping or broadcast.stopped):
            broadcast.want_work.clear()
            if not broadcast.active or work.queued >= self._want(broadcast):
                await broadcast.want_work.wait()
                continue
            try:
                if not work.bound:
                    await work.bind()
                    if gating.paid_allowance(broadcast.record.rate) is not None:
                        broadcast.paid_sent = await self._ledger.delivered(broadcast.uid)
                await work.pull(_FETCH_BATCH)
            except TimeoutError:
                # Not only nats.errors.TimeoutError: fetch also raises the builtin when its
                # deadline runs out between its two pull requests, and must not end the loop.
                continue
            except nats.errors.Error as error:
                log.warning("pulling work of broadcast %s failed: %s", broadcast.uid, error)
                await asyncio.sleep(1.0)
                continue
            broadcast.want_claim.set()

    # --- claiming ----------------------------------------------------------------------

    def _claim_size(self, broadcast: _Broadcast) -> int:
        return max(1, min(_CLAIM_MAX, math.ceil(self._rate(broadcast) * _CLAIM_SECONDS)))

    def _exposed(self) -> int:
        """Rows a crash now would leave uncertain: at most max_in_flight.

        The requests open, the outcomes not yet recorded, and the transactional messages
        claimed (they have no mark). A broadcast's row claimed but not yet marked is not
        among them: after a crash it is sent again (see marking), so claiming ahead, which
        keeps the paid rate fed, risks nothing."""
        exposed = self._in_flight + self._recorder.backlog
        if self._lane is not None:
            exposed += self._lane.claimed
        return exposed

    def _claim_budget(self) -> int:
        return self._settings.max_in_flight - self._exposed()

    async def _claim(self, broadcast: _Broadcast) -> None:
        reclaim = broadcast.record.delivery is Delivery.AT_LEAST_ONCE
        work = broadcast.work
        while True:
            if self._stopping or broadcast.stopped:
                return  # see close(): never cancelled while a claim is on its way
            broadcast.want_claim.clear()
            size = min(self._claim_size(broadcast), self._claim_budget())
            halted = self._pacer.halted_until - self._loop.time()
            if (
                not broadcast.active
                or halted > 0
                or not work.unclaimed
                or len(work.ready) >= self._claim_size(broadcast)
                or size <= 0
            ):
                if len(work.unclaimed) < self._want(broadcast) / 2:
                    broadcast.want_work.set()
                # Woken by whatever frees budget or brings rows, or when a halt ends; the
                # timeout is a safety net.
                await tasks.wait(broadcast.want_claim, min(1.0, halted) if halted > 0 else 1.0)
                continue
            taking = work.take(size)
            by_chat = {recipient.chat_id: recipient for recipient in taking}
            try:
                claims = await self._ledger.claim(broadcast.uid, list(by_chat), reclaim=reclaim)
            except ledgers.ERRORS as error:
                self._metrics.ledger_errors.labels("claim").inc()
                log.warning("claiming rows of broadcast %s failed: %s", broadcast.uid, error)
                work.untake(taking)
                await asyncio.sleep(0.5)
                continue
            self._metrics.claimed.inc(len(claims.claimed))
            if broadcast.active and not self._stopping:
                work.ready.extend(by_chat[chat_id] for chat_id in claims.claimed)
            else:
                # Paused or stopping while the claim was on its way: give the rows back.
                for chat_id in claims.claimed:
                    self._give_back(broadcast, by_chat[chat_id], requeue=not broadcast.stopped)
            self._settle(broadcast, claims.settled)
            work.busy(claims.busy)
            self._wake.set()

    # --- sending -----------------------------------------------------------------------

    async def _sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        await tasks.wait(self._wake, min(seconds, 1.0))

    def _sendable(self, broadcast: _Broadcast, now: datetime) -> bool:
        if not broadcast.active:
            return False
        record = broadcast.record
        self._roll_day()
        verdict = gating.gate(
            deadline=record.deadline,
            rate=record.rate,
            paid_sent=broadcast.paid_sent,
            now=now,
            limits=self._limits,
            paid_today=self._spend.paid,
        )
        if verdict is Gate.DEADLINE_PASSED:
            # Never send after the deadline; the operator reports DeadlineExceeded.
            self._release(broadcast, requeue=False)
            broadcast.tripped = True
        elif verdict is Gate.DAILY_BUDGET_SPENT:
            stars = self._limits.stars_per_day if self._limits else None
            self._trip(
                broadcast,
                FaultReason.DAILY_BUDGET_EXHAUSTED,
                f"the bot's daily Stars budget of {stars} is spent; sending goes on at 00:00 UTC",
            )
        elif verdict is Gate.BUDGET_SPENT:
            budget = record.rate.stars_budget
            self._trip(
                broadcast, FaultReason.BUDGET_EXHAUSTED, f"the Stars budget of {budget} is spent"
            )
        return verdict is Gate.OPEN

    def _heads(self, wall: datetime) -> tuple[dict[str, int], set[str]]:
        """Each broadcast's next chat, and which of them are deletions or edits."""
        heads: dict[str, int] = {}
        amending: set[str] = set()
        for uid, broadcast in list(self._broadcasts.items()):
            if broadcast.work.ready and self._sendable(broadcast, wall):
                heads[uid] = broadcast.work.ready[0].chat_id
            elif broadcast.amends and broadcast.amendable:
                # Deletions and edits take the broadcast's slots once nothing of it is ready
                # to send: paced as its sends are, after transactional messages.
                heads[uid] = broadcast.amends[0].recipient.chat_id
                amending.add(uid)
        return heads, amending

    def _start_amend(self, broadcast: _Broadcast, *, granted: float) -> None:
        self._in_flight += 1
        self._metrics.in_flight.inc()
        item = broadcast.amends.popleft()
        tasks.spawn(self._sends, self._amend(broadcast, item, granted=granted))
        if not broadcast.amends:
            broadcast.want_amend.set()

    async def _schedule(self) -> None:
        while True:
            self._wake.clear()
            now = self._loop.time()
            wall = datetime.now(UTC)
            next_retry = math.inf
            for broadcast in self._broadcasts.values():
                next_retry = min(next_retry, broadcast.work.due(now))
            lane, client = self._lane, self._bot_client
            messages: list[int] = []
            if lane is not None and client is not None:
                next_retry = min(next_retry, lane.due(now))
                messages = lane.chats()
            if self._stopping:
                return
            heads, amending = self._heads(wall)
            # A mark slower than the guard holds every new start back until it commits: the
            # starts granted meanwhile would leave together with it, closer than they were
            # counted (see Pacer.started).
            marking = self._marker.oldest
            if (
                not (heads or messages)
                or self._exposed() >= self._settings.max_in_flight
                or now > self.lease_until
                or (marking is not None and now - marking > pacing.GUARD)
            ):
                await self._sleep(min(next_retry - now, 1.0))
                continue
            decision = self._pacer.next(now, heads, messages)
            if isinstance(decision, pacing.Wait):
                await self._sleep(min(decision.until, next_retry) - now)
                continue
            if isinstance(decision, pacing.MessageGrant):
                assert lane is not None and client is not None
                held = lane.take(decision.chat_id)
                self._in_flight += 1
                self._metrics.in_flight.inc()
                departed = self._departure(None, decision.chat_id, now)
                tasks.spawn(self._sends, self._send_message(lane, held, client, departed))
                continue
            broadcast = self._broadcasts[decision.uid]
            if decision.uid in amending:
                self._start_amend(broadcast, granted=now)
                continue
            recipient = broadcast.work.ready.popleft()
            if broadcast.record.rate.allow_paid_broadcast:
                broadcast.paid_sent += 1
                spend = self._spend
                self._spend = spend.model_copy(update={"paid": spend.paid + 1})
                self._spend_kept = False
            self._in_flight += 1
            self._metrics.in_flight.inc()
            tasks.spawn(self._sends, self._send(broadcast, recipient, granted=now))
            if len(broadcast.work.ready) < self._claim_size(broadcast):
                broadcast.want_claim.set()

    async def _send(self, broadcast: _Broadcast, recipient: Recipient, *, granted: float) -> None:
        record = broadcast.record
        chat_id = recipient.chat_id
        # Rendered before the mark, so that its commit is the last step before the request.
        # Sent from now on as corrected; the row records which correction it shows.
        rendered = render(
            broadcast.outgoing[0],
            recipient,
            broadcast_uid=record.uid,
            allow_paid_broadcast=record.rate.allow_paid_broadcast,
        )
        unsent = judge_unsent(rendered)
        if unsent is not None:
            self._sent()
            self._act(broadcast, recipient, unsent, None, "")
            return
        try:
            if not await self._mark(broadcast, recipient):
                return
            paused = broadcast.record.state is not BroadcastState.ACTIVE or broadcast.stopped
            if paused or self._loop.time() < self._pacer.halted_until:
                # A 429 or a pause came while the mark was on its way: this slot is gone,
                # and the row goes back to pending as the unsent ones did. (A send counted
                # against a budget just spent still leaves: it was within the budget.)
                self._give_back(broadcast, recipient, requeue=not broadcast.stopped)
                return
            attempt = broadcast.attempts[chat_id] = broadcast.attempts.get(chat_id, 0) + 1
            started = self._loop.time()
            try:
                outcome = await broadcast.client.send(
                    rendered, departed=self._departure(record.uid, chat_id, granted)
                )
            finally:
                self._metrics.send_duration.observe(self._loop.time() - started)
        finally:
            self._sent()
        self._metrics.messages.labels(outcome.kind.value).inc()
        copying = rendered.method == "copyMessage"
        verdict = judge(
            outcome,
            delivery=record.delivery,
            attempt=attempt,
            proven=rendered.variant in broadcast.proven,
            copying=copying,
        )
        if verdict.state is DeliveryState.DELIVERED:
            broadcast.proven.add(rendered.variant)
        description = outcome.description
        source = record.content.copy_from
        if copying and verdict.fault is FaultReason.CONTENT_REJECTED and source is not None:
            # The condition says which message could not be copied, not only Telegram's words.
            description = (
                f"copyFrom chatId {source.chat_id} messageId {source.message_id}: {description}"
            )
        self._act(
            broadcast,
            recipient,
            verdict,
            outcome.message_id,
            description,
            message_ids=outcome.message_ids,
            correction=broadcast.outgoing[1],
        )

    def _departure(self, uid: str | None, chat_id: int, granted: float) -> Callable[[], None]:
        """What tells the pacer when the send granted at `granted` really left."""

        def departed() -> None:
            self._pacer.started(uid, chat_id, granted=granted, at=self._loop.time())

        return departed

    def _sent(self) -> None:
        """A send is over, answered or decided without a request."""
        self._in_flight -= 1
        self._metrics.in_flight.dec()
        self._wake.set()
        # A finished request frees claim budget (claims count against max_in_flight).
        for other in self._broadcasts.values():
            other.want_claim.set()

    async def _mark(self, broadcast: _Broadcast, recipient: Recipient) -> bool:
        """Mark the row sending; False when it is not to be sent now."""
        try:
            mine = await self._marker.mark(broadcast.uid, recipient.chat_id)
        except ledgers.ERRORS as error:
            self._metrics.ledger_errors.labels("mark").inc()
            log.warning("marking a row of broadcast %s failed: %s", broadcast.uid, error)
            # Still claimed and never sent: it takes a later slot here, or the sender that
            # reclaims it once stale sends it.
            broadcast.work.retry(self._loop.time() + 0.5, recipient)
            return False
        if not mine:
            # Another sender took the row over (this one was taken for dead), or the
            # operator closed it: not to be sent from here.
            broadcast.work.busy([recipient.chat_id])
        return mine

    async def _send_message(
        self, lane: MessageLane, held: Held, client: TelegramClient, departed: Callable[[], None]
    ) -> None:
        try:
            await lane.send(held, client, halt=self._halt_for, departed=departed)
        finally:
            self._sent()

    def _act(
        self,
        broadcast: _Broadcast,
        recipient: Recipient,
        verdict: Verdict,
        message_id: int | None,
        description: str,
        *,
        message_ids: tuple[int, ...] = (),
        correction: str | None = None,
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
                message_ids=message_ids,
                correction_key=correction if verdict.state is DeliveryState.DELIVERED else None,
                deactivate_for=self.bot_id if verdict.action is Action.DEACTIVATE else None,
            )
            self._recorder.add(broadcast.uid, row, lambda: self._settle(broadcast, [chat_id]))
        elif verdict.action is Action.RETRY:
            broadcast.work.retry(self._loop.time() + verdict.delay, recipient)
            self._wake.set()
        elif verdict.action is Action.HALT_BOT:
            broadcast.attempts.pop(chat_id, None)
            self._halt_for(verdict.delay)
            # Back to pending, and retried after the halt through a fresh claim.
            self._give_back(broadcast, recipient, requeue=True)
        else:  # TRIP
            self._give_back(broadcast, recipient, requeue=False)
            self._trip(broadcast, verdict.fault or FaultReason.CONTENT_REJECTED, description)

    def _trip(self, broadcast: _Broadcast, reason: FaultReason, message: str) -> None:
        """The broadcast cannot go on: report it and stop sending it here."""
        if broadcast.tripped:
            return
        broadcast.tripped, broadcast.tripped_by = True, reason
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
        tasks.spawn(self._tasks, self._controls.fault(fault))

    # --- recalling and correcting ------------------------------------------------------

    async def _claim_amends(self, broadcast: _Broadcast) -> None:
        """Claim delivered rows still to delete or edit, a slot's worth ahead, while the
        broadcast is recalled or corrected; the scheduler gives them the broadcast's slots."""
        while not (self._stopping or broadcast.stopped):
            broadcast.want_amend.clear()
            halted = self._pacer.halted_until - self._loop.time()
            if not broadcast.amendable or broadcast.amends or halted > 0:
                await tasks.wait(broadcast.want_amend, min(1.0, halted) if halted > 0 else 1.0)
                continue
            recall, key = wanted = broadcast.amending
            try:
                found = await self._ledger.claim_amends(
                    broadcast.uid,
                    bot_id=self.bot_id,
                    recall=recall,
                    correction=key,
                    limit=max(10, self._claim_size(broadcast)),
                )
            except ledgers.ERRORS as error:
                self._metrics.ledger_errors.labels("amend").inc()
                log.warning(
                    "claiming rows of broadcast %s to amend failed: %s", broadcast.uid, error
                )
                await asyncio.sleep(0.5)
                continue
            if not found:
                # Nothing left here: look again for what a dead sender's claims leave, or
                # the next correction.
                await tasks.wait(broadcast.want_amend, 5.0)
                continue
            now_wanted = broadcast.amending
            if now_wanted != wanted or not broadcast.amendable or self._stopping:
                await self._ledger.release_amends(
                    broadcast.uid, [item.recipient.chat_id for item in found]
                )
                continue
            # Decided without a request: past the 48 hours, or no message id to act on.
            settled = [
                (item.recipient.chat_id, Amendment.TOO_OLD if item.too_old else Amendment.GONE)
                for item in found
                if (recall and item.too_old) or not item.message_ids
            ]
            if settled:
                await self._record_amends(broadcast, settled, wanted)
            skip = {chat_id for chat_id, _ in settled}
            broadcast.amends.extend(item for item in found if item.recipient.chat_id not in skip)
            broadcast.amends_for = wanted
            self._wake.set()

    async def _amend(self, broadcast: _Broadcast, item: ToAmend, *, granted: float) -> None:
        """Delete or edit one delivered row's messages, then record what its chat sees."""
        record = broadcast.record
        recall, key = wanted = broadcast.amends_for
        chat_id = item.recipient.chat_id
        rendered: Rendered
        if recall:
            rendered = (
                render_delete(chat_id, item.message_ids[0])
                if len(item.message_ids) == 1
                else render_delete_all(chat_id, item.message_ids)
            )
        elif record.correction is not None and broadcast.outgoing[1] == key:
            rendered = render_edit(
                record.content,
                record.correction,
                item.recipient,
                broadcast_uid=record.uid,
                message_id=item.message_ids[0],
            )
        else:
            # The correction changed since the claim: the row waits for the new one.
            self._sent()
            await self._quietly_release_amends(broadcast.uid, [chat_id])
            return
        attempt = broadcast.amend_attempts[chat_id] = broadcast.amend_attempts.get(chat_id, 0) + 1
        try:
            outcome: Outcome = await broadcast.client.send(
                rendered, departed=self._departure(record.uid, chat_id, granted)
            )
        finally:
            self._sent()
        self._metrics.messages.labels(outcome.kind.value).inc()
        verdict = judge_amend(outcome, recall=recall, attempt=attempt)
        if verdict.action is Action.RECORD and verdict.outcome is not None:
            broadcast.amend_attempts.pop(chat_id, None)
            if verdict.outcome is Amendment.FAILED:
                log.warning(
                    "%s of a message of broadcast %s failed: %s",
                    "deleting" if recall else "editing",
                    broadcast.uid,
                    outcome.description,
                )
            await self._record_amends(broadcast, [(chat_id, verdict.outcome)], wanted)
        elif verdict.action is Action.RETRY:
            self._loop.call_later(verdict.delay, self._retry_amend, broadcast, item, wanted)
        elif verdict.action is Action.HALT_BOT:
            broadcast.amend_attempts.pop(chat_id, None)
            broadcast.amends.appendleft(item)
            self._halt_for(verdict.delay)
        else:  # TRIP: the token was refused
            broadcast.amends.appendleft(item)
            self._release_amends(broadcast)
            self._trip(broadcast, FaultReason.BOT_UNAUTHORIZED, outcome.description)

    def _retry_amend(
        self, broadcast: _Broadcast, item: ToAmend, wanted: tuple[bool, str | None]
    ) -> None:
        if broadcast.amends_for == wanted and broadcast.amendable and not self._stopping:
            broadcast.amends.appendleft(item)
            self._wake.set()
        else:
            tasks.spawn(
                self._tasks, self._ledger.release_amends(broadcast.uid, [item.recipient.chat_id])
            )

    async def _record_amends(
        self,
        broadcast: _Broadcast,
        outcomes: list[tuple[int, Amendment]],
        wanted: tuple[bool, str | None],
    ) -> None:
        recall, key = wanted
        for _ in range(10):
            try:
                await self._ledger.record_amends(
                    broadcast.uid, outcomes, recall=recall, correction=key
                )
            except ledgers.ERRORS as error:
                # The claim stays; another try, then the claim TTL hands it on.
                self._metrics.ledger_errors.labels("amend").inc()
                log.warning("recording amends of broadcast %s failed: %s", broadcast.uid, error)
                await asyncio.sleep(0.5)
                continue
            for _, outcome in outcomes:
                self._metrics.amendments.labels(outcome.value).inc()
            return

    def _release_amends(self, broadcast: _Broadcast) -> None:
        """Rows claimed to amend and not acted on are free again."""
        chat_ids = [item.recipient.chat_id for item in broadcast.amends]
        broadcast.amends.clear()
        if chat_ids:
            tasks.spawn(self._tasks, self._quietly_release_amends(broadcast.uid, chat_ids))

    async def _quietly_release_amends(self, uid: str, chat_ids: list[int]) -> None:
        # Not released, they are free once their claim is older than the claim TTL.
        with contextlib.suppress(*ledgers.ERRORS):
            await self._ledger.release_amends(uid, chat_ids)

    # --- the daily Stars budget --------------------------------------------------------

    def _roll_day(self) -> None:
        today = _today()
        if self._spend.day != today:
            self._spend = BotSpend(bot_id=self.bot_id, day=today, paid=0)
            self._spend_kept = False

    async def _keep_spend(self) -> None:
        """Go on from the previous holder's count, then keep ours about once a second. A
        crash loses at most the last second's count: the budget may be overspent by that."""
        with contextlib.suppress(nats.errors.Error):
            kept = await self._controls.spend_of(self.bot_id)
            if kept is not None and kept.day == self._spend.day:
                self._spend = self._spend.model_copy(update={"paid": self._spend.paid + kept.paid})
        while not self._stopping:
            await asyncio.sleep(1.0)
            if self._spend_kept:
                continue
            spend = self._spend
            try:
                await self._controls.spend(spend)
            except nats.errors.Error as error:
                log.warning("keeping the paid count of bot %s failed: %s", self.bot_id, error)
                continue
            self._spend_kept = self._spend is spend

    # --- bookkeeping -------------------------------------------------------------------

    def _give_back(self, broadcast: _Broadcast, recipient: Recipient, *, requeue: bool) -> None:
        def then() -> None:
            if requeue and not broadcast.stopped:
                broadcast.work.unclaimed.appendleft(recipient)
            broadcast.want_claim.set()

        self._recorder.add(broadcast.uid, Row(recipient.chat_id, DeliveryState.PENDING), then)

    def _release(self, broadcast: _Broadcast, *, requeue: bool) -> None:
        """Rows claimed but not sent go back to pending."""
        for recipient in reversed(broadcast.work.release()):
            self._give_back(broadcast, recipient, requeue=requeue)

    def _settle(self, broadcast: _Broadcast, chat_ids: list[int]) -> None:
        broadcast.work.settle(chat_ids)
        broadcast.want_work.set()
        # Recorded rows free claim budget.
        broadcast.want_claim.set()

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
            chat_ids = [item.recipient.chat_id for item in broadcast.amends]
            broadcast.amends.clear()
            with contextlib.suppress(*ledgers.ERRORS):
                await self._ledger.release_amends(broadcast.uid, chat_ids)
        for broadcast in self._broadcasts.values():
            await asyncio.gather(*broadcast.tasks, return_exceptions=True)
        with contextlib.suppress(*ledgers.ERRORS):
            await self._recorder.flush()
        for broadcast in self._broadcasts.values():
            await broadcast.work.let_go()
        if self._lane is not None:
            await self._lane.close()
        if self._acks:
            await asyncio.wait(set(self._acks), timeout=2.0)
        for task in list(self._tasks):
            task.cancel()
        for client in self._clients.values():
            await client.close()


def _today() -> str:
    return datetime.now(UTC).date().isoformat()
