"""The transactional lane of one bot's lease holder: a :class:`MessageLane` pulls the bot's
messages from its durable consumer ``messages-<bot id>``, claims a few shortly before their
slot, offers the claimed ones to the pacer (which serves them ahead of the bot's broadcasts,
:mod:`~herald.sender.pacing`), then sends, records, announces and acks each.

At most once, as for a broadcast's rows: a row is claimed before its send (only while
pending, so a final message, or another sender's, is acked and dropped), and whatever
happens after the request left is recorded as it is, never sent again. A sender that dies
between claim and answer leaves the row claimed: the operator's sweep makes it uncertain.
Nothing sent (a 429, a 5xx, a stop) keeps or gives back the claim and sends again later.

Claimed before the slot, not after it: a claim's round trip between the pacer's grant and the
request would shift the request's arrival past the pacer's window guard. Few are claimed
ahead (:data:`_CLAIM_AHEAD`), one per chat, none during a halt, so claims wait briefly and a
crash leaves few uncertain.

Outcomes are announced on ``herald.outcomes.<bot id>`` (core NATS) once the row says them, for
an API process waiting on ``?wait=``; it reads the row when the announcement is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from pydantic import ValidationError

from herald.core import subjects
from herald.core.broadcasts import Delivery
from herald.core.contents import Content
from herald.core.deliveries import DeliveryState
from herald.core.envelopes import (
    DecodeError,
    MessageOutcome,
    MessageWork,
    Recipient,
    decode,
    encode,
)
from herald.core.messages import state_of
from herald.sender import ledgers, tasks
from herald.sender.ledgers import ClaimedMessage, Ledger, Row
from herald.sender.metrics import Metrics
from herald.sender.outcomes import Action, Reason, judge
from herald.telegram.client import TelegramClient
from herald.telegram.rendering import render

__all__ = ["Held", "MessageLane"]

log = logging.getLogger(__name__)

# Messages held at once (waiting for a slot, in flight, waiting for a retry): more than a
# second of the bot's free limit, so a burst is sent at the limit, few enough that a stop
# hands little back.
_AHEAD = 64
# The chats of this many waiting messages are offered to the pacer at each slot.
_OFFERED = 32
_PULL_SECONDS = 1.0
_NO_CONSUMER_SECONDS = 2.0
# Claimed messages waiting for a slot: a quarter second of the free limit.
_CLAIM_AHEAD = 8
# A claim or a write that fails is tried again this often before the row is left to the
# sweep (claimed: uncertain; the message is never sent twice).
_WRITE_ATTEMPTS = 10
_WRITE_PAUSE = 0.5


@dataclass(slots=True, eq=False)
class Held:
    """A transactional message pulled and not yet answered on JetStream."""

    msg: Msg
    work: MessageWork
    claim: ClaimedMessage | None = None  # set while this sender holds the row's claim
    content: Content | None = None
    attempts: int = 0

    @property
    def chat_id(self) -> int:
        return self.claim.chat_id if self.claim is not None else self.work.chat_id


class MessageLane:
    """The transactional messages of one bot held by this sender."""

    def __init__(
        self,
        *,
        bot_id: str,
        js: JetStreamContext,
        nc: NatsClient,
        ledger: Ledger,
        metrics: Metrics,
        vitals: tasks.Vitals,
        wake: Callable[[], None],
        acks: set[asyncio.Task[Any]],
    ) -> None:
        self.bot_id = bot_id
        self._js = js
        self._nc = nc
        self._ledger = ledger
        self._metrics = metrics
        self._wake = wake
        self._acks = acks
        self._loop = asyncio.get_running_loop()
        self._unclaimed: deque[Held] = deque()  # pulled, in the order they came
        self.ready: deque[Held] = deque()  # claimed, waiting for a slot
        self._retries: list[tuple[float, Held]] = []  # claimed, sent again at a time
        self._sending: set[Held] = set()  # their request may be out: never given back
        self._held: dict[str, Held] = {}  # by message id: everything not yet answered
        self._sub: JetStreamContext.PullSubscription | None = None
        self.ack_wait = 30.0
        self._halted_until = -math.inf
        self._room = asyncio.Event()
        self._want_claim = asyncio.Event()
        self._stopping = False
        self._told_no_consumer = False
        self._tasks: set[asyncio.Task[Any]] = set()
        of = f"the transactional messages of bot {bot_id}"
        self._loops = (
            tasks.spawn(self._tasks, self._feed(), vital=(vitals, f"the feed of {of}")),
            tasks.spawn(self._tasks, self._keep_alive(), vital=(vitals, f"the keep-alive of {of}")),
        )
        self._claimer = tasks.spawn(
            self._tasks, self._claim(), vital=(vitals, f"the claims of {of}")
        )

    # --- what the scheduler asks ---------------------------------------------------------

    @property
    def claimed(self) -> int:
        """Claimed messages not sent yet: after a crash these are uncertain."""
        return len(self.ready) + len(self._retries)

    def chats(self) -> list[int]:
        """The chats of the first claimed messages waiting for a slot, in order."""
        return [held.chat_id for _, held in zip(range(_OFFERED), self.ready, strict=False)]

    def take(self, chat_id: int) -> Held:
        """The first waiting message to `chat_id`, which the pacer just gave a slot."""
        for held in self.ready:
            if held.chat_id == chat_id:
                self.ready.remove(held)
                self._sending.add(held)
                self._want_claim.set()
                return held
        raise LookupError(f"no message to chat {chat_id} waits")

    def due(self, now: float) -> float:
        """Retries due by `now` go to the front of the waiting messages; when the next is."""
        if not self._retries:
            return math.inf
        due = [item for item in self._retries if item[0] <= now]
        if due:
            self._retries = [item for item in self._retries if item[0] > now]
            self.ready.extendleft(held for _, held in reversed(due))
        return min((at for at, _ in self._retries), default=math.inf)

    def halt(self, until: float) -> None:
        """The bot halts until `until` (loop time): no claims meanwhile, and the claims
        waiting go back to pending, since a crash through a long retry_after would leave
        them uncertain."""
        self._halted_until = max(self._halted_until, until)
        waiting = [*self.ready, *(held for _, held in self._retries)]
        self.ready.clear()
        self._retries.clear()
        if waiting:
            tasks.spawn(self._tasks, self._give_back(waiting))

    # --- pulling -------------------------------------------------------------------------

    async def _bind(self) -> None:
        sub = await self._js.pull_subscribe_bind(
            durable=subjects.message_consumer(self.bot_id), stream=subjects.MESSAGES_STREAM
        )
        try:
            info = await sub.consumer_info()
        except BaseException:
            with contextlib.suppress(nats.errors.Error):
                await sub.unsubscribe()
            raise
        if info.config.ack_wait:
            self.ack_wait = float(info.config.ack_wait)
        self._sub = sub

    async def _feed(self) -> None:
        while not self._stopping:
            self._room.clear()
            if len(self._held) >= _AHEAD:
                await self._room.wait()
                continue
            try:
                if self._sub is None:
                    await self._bind()
                assert self._sub is not None
                # One at a time: a pull for more waits out its whole time-out once one came.
                pulled = await self._sub.fetch(1, timeout=_PULL_SECONDS)
            except TimeoutError:
                continue  # nothing queued (nats' own TimeoutError is the builtin's too)
            except nats.js.errors.NotFoundError:
                # The operator creates the consumer when it verifies the Bot.
                if not self._told_no_consumer:
                    log.info("bot %s has no consumer of transactional messages yet", self.bot_id)
                    self._told_no_consumer = True
                await asyncio.sleep(_NO_CONSUMER_SECONDS)
                continue
            except nats.errors.Error as error:
                log.warning(
                    "pulling transactional messages of bot %s failed: %s", self.bot_id, error
                )
                await asyncio.sleep(1.0)
                continue
            for msg in pulled:
                self._admit(msg)

    def _admit(self, msg: Msg) -> None:
        try:
            work = decode(MessageWork, msg.data)
            UUID(work.id)
        except (DecodeError, ValueError):
            # Never usable, however long it waits: terminated, never redelivered.
            self._metrics.bad_work.labels("undecodable").inc()
            log.warning("terminating an unusable transactional message of bot %s", self.bot_id)
            tasks.spawn(self._acks, msg.term())
            return
        if (held := self._held.get(work.id)) is not None:
            # Redelivered while held here: answer on the newest delivery, send it once.
            held.msg = msg
            return
        held = self._held[work.id] = Held(msg, work)
        self._unclaimed.append(held)
        self._want_claim.set()

    async def _keep_alive(self) -> None:
        # Held messages must not be redelivered to another replica while they wait here.
        while not self._stopping:
            await asyncio.sleep(max(0.5, self.ack_wait / 3))
            for held in list(self._held.values()):
                with contextlib.suppress(nats.errors.Error):
                    await held.msg.in_progress()

    # --- claiming ------------------------------------------------------------------------

    def _claimable(self) -> list[Held]:
        """The first pulled messages to claim now: within the claims ahead, one per chat
        (a second one would wait its chat's second, claimed)."""
        room = _CLAIM_AHEAD - self.claimed
        busy = {held.chat_id for held in self.ready} | {h.chat_id for _, h in self._retries}
        taking: list[Held] = []
        for held in self._unclaimed:
            if len(taking) >= room:
                break
            if held.chat_id not in busy:
                busy.add(held.chat_id)
                taking.append(held)
        return taking

    async def _claim(self) -> None:
        while True:
            if self._stopping:
                return  # see close(): never cancelled while a claim is on its way
            self._want_claim.clear()
            halted = self._halted_until - self._loop.time()
            taking = self._claimable() if halted <= 0 else []
            if not taking:
                await tasks.wait(self._want_claim, min(1.0, halted) if halted > 0 else 1.0)
                continue
            for held in taking:
                self._unclaimed.remove(held)
            try:
                claims = await self._ledger.claim_messages([held.work.id for held in taking])
            except ledgers.ERRORS as error:
                self._metrics.ledger_errors.labels("claim").inc()
                log.warning("claiming transactional messages failed: %s", error)
                self._unclaimed.extendleft(reversed(taking))
                await asyncio.sleep(_WRITE_PAUSE)
                continue
            for held in taking:
                self._claimed(held, claims.get(held.work.id))
            self._wake()

    def _claimed(self, held: Held, claim: ClaimedMessage | None) -> None:
        if claim is None:
            # Final already, or claimed by a sender that may have sent it: not ours to send.
            self._done(held)
            return
        if claim.state is not DeliveryState.CLAIMED:
            self._finish(held, claim.state)  # its deadline passed: failed, never sent
            return
        held.claim = claim
        try:
            held.content = Content.model_validate(claim.content)
        except ValidationError as error:
            reason = f"{Reason.BAD_REQUEST}: unreadable content ({error.error_count()} errors)"
            row = Row(claim.chat_id, DeliveryState.FAILED, reason)
            tasks.spawn(self._tasks, self._record(held, row))
            return
        self.ready.append(held)

    # --- sending -------------------------------------------------------------------------

    async def send(
        self,
        held: Held,
        client: TelegramClient,
        *,
        halt: Callable[[float], None],
        departed: Callable[[], None] | None = None,
    ) -> None:
        """Send, record, announce and ack one claimed message the pacer gave a slot (see
        :meth:`take`); `halt` stops the whole bot for a 429's retry_after, `departed` is told
        when the request leaves."""
        try:
            await self._send(held, client, halt, departed)
        finally:
            self._sending.discard(held)

    async def _send(
        self,
        held: Held,
        client: TelegramClient,
        halt: Callable[[float], None],
        departed: Callable[[], None] | None,
    ) -> None:
        claim, content = held.claim, held.content
        assert claim is not None and content is not None
        if claim.deadline is not None and datetime.now(UTC) >= claim.deadline:
            row = Row(claim.chat_id, DeliveryState.FAILED, Reason.DEADLINE_EXCEEDED)
            await self._record(held, row)
            return
        # Callback buttons carry the message's id where a broadcast's carry its uid: the bot
        # answers a press of them, and counts it for no Broadcast.
        rendered = render(
            content,
            Recipient(claim.chat_id),
            broadcast_uid=held.work.id,
            allow_paid_broadcast=False,
        )
        held.attempts += 1
        started = self._loop.time()
        try:
            outcome = await client.send(rendered, departed=departed)
        finally:
            self._metrics.send_duration.observe(self._loop.time() - started)
        self._metrics.messages.labels(outcome.kind.value).inc()
        # Each message is its own content: a content error fails it alone (proven).
        verdict = judge(outcome, delivery=Delivery.AT_MOST_ONCE, attempt=held.attempts, proven=True)
        if verdict.action in (Action.RECORD, Action.DEACTIVATE):
            deactivate = self.bot_id if verdict.action is Action.DEACTIVATE else None
            row = Row(claim.chat_id, verdict.state, verdict.reason, outcome.message_id, deactivate)
            await self._record(held, row)
        elif verdict.action is Action.RETRY:
            self._retries.append((self._loop.time() + verdict.delay, held))
            self._wake()
        elif verdict.action is Action.HALT_BOT:
            halt(verdict.delay)
            await self._give_back([held])  # pending through the halt, sent after it
        else:  # TRIP: the token was refused, which no retry of this message can mend
            reason = str(verdict.fault or Reason.BAD_REQUEST)
            await self._record(held, Row(claim.chat_id, DeliveryState.FAILED, reason))

    async def _record(self, held: Held, row: Row) -> None:
        for attempt in range(_WRITE_ATTEMPTS):
            try:
                still_ours = await self._ledger.record_message(held.work.id, row)
            except ledgers.ERRORS as error:
                self._metrics.ledger_errors.labels("record").inc()
                log.warning("recording a transactional message failed (%d): %s", attempt, error)
                await asyncio.sleep(_WRITE_PAUSE)
                continue
            if still_ours:
                self._finish(held, row.state)
            else:
                log.warning("a transactional message's claim was settled by the sweep first")
                self._done(held)
            return
        # Left claimed: the sweep makes it uncertain; its redelivery finds it claimed.
        log.error("giving up recording transactional message %s", held.work.id)
        self._forget(held)

    async def _give_back(self, helds: list[Held]) -> None:
        """Claimed messages not sent (taken out of the waiting ones): pending again, to be
        claimed again later; still claimed and waiting when that fails."""
        try:
            await self._ledger.release_messages([held.work.id for held in helds])
        except ledgers.ERRORS as error:
            self._metrics.ledger_errors.labels("record").inc()
            log.warning("giving transactional messages back failed: %s", error)
            self.ready.extendleft(reversed(helds))  # still ours: sent on that claim
            return
        for held in helds:
            held.claim, held.content = None, None
        if not self._stopping:
            self._unclaimed.extendleft(reversed(helds))
            self._want_claim.set()

    # --- answering -----------------------------------------------------------------------

    def _finish(self, held: Held, state: DeliveryState) -> None:
        """The row is final: count it, announce it, ack it."""
        self._metrics.transactional.labels(state.value).inc()
        outcome = MessageOutcome(id=held.work.id, state=state_of(state))
        tasks.spawn(self._tasks, self._announce(outcome))
        self._done(held)

    async def _announce(self, outcome: MessageOutcome) -> None:
        with contextlib.suppress(nats.errors.Error):
            await self._nc.publish(subjects.outcome_subject(self.bot_id), encode(outcome))

    def _done(self, held: Held) -> None:
        tasks.spawn(self._acks, held.msg.ack())
        self._forget(held)

    def _forget(self, held: Held) -> None:
        self._held.pop(held.work.id, None)
        self._room.set()

    # --- stopping ------------------------------------------------------------------------

    async def close(self) -> None:
        """No more pulls or claims; claims not sent go back to pending, and every message
        not answered goes back to the stream now, for the next holder of the bot."""
        self._stopping = True
        self._room.set()
        self._want_claim.set()
        for loop in self._loops:
            loop.cancel()
        # A claim on its way must come back and be given back: cancelled mid-way, it would
        # leave its rows claimed by a process about to exit, to end uncertain.
        await asyncio.gather(self._claimer, *self._loops, return_exceptions=True)
        waiting = [*self.ready, *(held for _, held in self._retries)]
        self.ready.clear()
        self._retries.clear()
        if waiting:
            await self._give_back(waiting)
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=2.0)
        # A send still out keeps its claim (it may have been sent) and answers for itself.
        for held in self._held.values():
            if held not in self._sending:
                tasks.spawn(self._acks, held.msg.nak())
        self._held.clear()
        self._unclaimed.clear()
        if self._sub is not None:
            with contextlib.suppress(nats.errors.Error):
                await self._sub.unsubscribe()
