"""When the next message of a bot may leave: a transactional message, or which broadcast's.
Pure: time is an argument, so the tests drive it with a simulated clock.

Three limits hold at every instant, each as a *start schedule* (GCRA: a theoretical next
start that advances by one interval per send) plus a *window guard*:

- each broadcast at most its ``messagesPerSecond``;
- the bot at most 30 msg/s, or 1000 msg/s while every broadcast with work is paid and no
  transactional message waits (Telegram counts all of a bot's sends against the free limit
  of an unpaid request, so a free broadcast or a transactional message next to a paid
  broadcast holds the bot to 30);
- each chat at most one message per second, across broadcasts and transactional messages.

No burst: a schedule that fell behind by more than one interval or CATCH_UP, whichever is
longer (a pause, an empty queue), restarts from now instead of catching up. A schedule
behind by less keeps its slots, which absorbs timer and event-loop lateness so the rate
reached is the rate configured. At 1000 msg/s an interval is 1 ms, less than the event
loop's timer resolution and a busy loop's lateness: with one interval alone, each late
wake-up lost its time for good, and the paid rate fell to 0.6 of the limit.

The window guard makes the limit hold as Telegram measures it, over any one-second window
of *arrivals*: the N-th previous start must be at least ``1 + GUARD`` seconds old. A start
counts from when its request went to the socket (:meth:`Pacer.started`), so a wait for the
ledger, a connection or the event loop does not bunch arrivals; jitter after that (the
network) up to GUARD cannot push N + 1 arrivals into one second. It costs GUARD of every
second at full rate (1.5%).

Precedence: a transactional message whose chat is free takes the bot's next slot before
any broadcast (:class:`MessageGrant`). Transactional messages have no schedule of their own:
they are bounded by the bot's limit alone, so a broadcast at the bot's full rate slows by
what they use, and the bot's total stays within its limit.

Fairness: at each bot slot the broadcast served least recently among those allowed to send
wins. A broadcast capped below an equal share takes its cap and the rest share what is left:
max-min fairness, the split :func:`fair_shares` computes.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from herald.core.broadcasts import FREE_MESSAGES_PER_SECOND, PAID_MESSAGES_PER_SECOND
from herald.core.envelopes import SendRate

__all__ = [
    "CATCH_UP",
    "CHAT_COOLDOWN",
    "GUARD",
    "Grant",
    "MessageGrant",
    "Pacer",
    "Wait",
    "fair_shares",
]

GUARD = 0.015
CATCH_UP = 0.05
CHAT_COOLDOWN = 1.0
_PERIOD = 1.0


def fair_shares(limit: float, caps: Mapping[str, float]) -> dict[str, float]:
    """Max-min fair split of `limit` between broadcasts capped at `caps` (water-filling)."""
    shares: dict[str, float] = {}
    left = float(limit)
    pending = sorted(caps.items(), key=lambda item: item[1])
    while pending:
        equal = left / len(pending)
        uid, cap = pending[0]
        if cap <= equal:
            shares[uid] = cap
            left -= cap
            pending.pop(0)
            continue
        for uid, _ in pending:
            shares[uid] = equal
        break
    return shares


@dataclass(frozen=True, slots=True)
class Grant:
    """Start a send of this broadcast now (already counted against every limit)."""

    uid: str


@dataclass(frozen=True, slots=True)
class MessageGrant:
    """Start the send of the transactional message to `chat_id` now (already counted)."""

    chat_id: int


@dataclass(frozen=True, slots=True)
class Wait:
    """Nothing may start before `until`."""

    until: float


@dataclass(slots=True)
class _Schedule:
    """GCRA start schedule plus the window guard, for one rate."""

    rate: float
    tat: float = -math.inf
    starts: list[float] = field(default_factory=list)

    def ready_at(self, rate: float | None = None) -> float:
        rate = self.rate if rate is None else rate
        count = max(1, math.floor(rate))
        ready = self.tat
        if len(self.starts) >= count:
            ready = max(ready, self.starts[-count] + _PERIOD + GUARD)
        return ready

    def take(self, now: float, rate: float | None = None) -> None:
        rate = self.rate if rate is None else rate
        interval = 1.0 / rate
        # Late by less than an interval or CATCH_UP: keep the slot (absorbs lateness). Later
        # than that: the schedule was idle, restart from now rather than catch up (no burst).
        self.tat = (self.tat if now - self.tat < max(interval, CATCH_UP) else now) + interval
        self.starts.append(now)
        keep = max(1, math.floor(max(rate, self.rate)))
        if len(self.starts) > 2 * keep + 64:
            del self.starts[: len(self.starts) - keep]

    def moved(self, granted: float, at: float) -> None:
        """The start counted at `granted` left at `at`, later."""
        for index in range(len(self.starts) - 1, -1, -1):
            if self.starts[index] == granted:
                del self.starts[index]
                bisect.insort(self.starts, at)
                return


@dataclass(slots=True)
class _Broadcast:
    schedule: _Schedule
    paid: bool
    served: int = 0


class Pacer:
    """The pacing state of one bot."""

    def __init__(
        self,
        *,
        free_limit: float = FREE_MESSAGES_PER_SECOND,
        paid_limit: float = PAID_MESSAGES_PER_SECOND,
        chat_cooldown: float = CHAT_COOLDOWN,
    ) -> None:
        self.free_limit = free_limit
        self.paid_limit = paid_limit
        self.chat_cooldown = chat_cooldown
        self._bot = _Schedule(rate=paid_limit)
        self._broadcasts: dict[str, _Broadcast] = {}
        self._chats: dict[int, float] = {}
        self._chats_sweep_at = 1024
        self._halted_until = -math.inf
        self._turn = 0

    def limit(self, *, free: float, paid: float) -> None:
        """The bot's own ceilings (its Bot's spec.limits), which may change while it sends."""
        self.free_limit = free
        self.paid_limit = paid
        self._bot.rate = paid

    def configure(self, uid: str, rate: SendRate) -> None:
        """Add a broadcast or change its rate; its schedule carries over."""
        per_second, paid = rate.messages_per_second, rate.allow_paid_broadcast
        if per_second <= 0:
            raise ValueError("a broadcast's rate must be positive")
        current = self._broadcasts.get(uid)
        if current is None:
            self._broadcasts[uid] = _Broadcast(_Schedule(rate=per_second), paid)
        else:
            current.schedule.rate = per_second
            current.paid = paid

    def remove(self, uid: str) -> None:
        self._broadcasts.pop(uid, None)

    def rate_of(self, uid: str) -> float:
        """The broadcast's own rate, as configured."""
        return self._broadcasts[uid].schedule.rate

    def halt(self, until: float) -> None:
        """Nothing starts before `until` (a 429's retry_after)."""
        self._halted_until = max(self._halted_until, until)

    @property
    def halted_until(self) -> float:
        return self._halted_until

    def bot_limit(self, uids: Iterable[str], *, messages: bool = False) -> float:
        """The bot's ceiling while `uids` have work, and transactional messages wait if
        `messages` (they are unpaid requests: Telegram holds the bot to its free limit)."""
        known = [self._broadcasts[uid] for uid in uids if uid in self._broadcasts]
        if not messages and known and all(broadcast.paid for broadcast in known):
            return self.paid_limit
        return self.free_limit

    def shares(self, uids: Iterable[str]) -> dict[str, float]:
        """The rate each of `uids` gets while they all have work."""
        uids = [uid for uid in uids if uid in self._broadcasts]
        caps = {uid: self._broadcasts[uid].schedule.rate for uid in uids}
        return fair_shares(self.bot_limit(uids), caps)

    def chat_free_at(self, chat_id: int) -> float:
        last = self._chats.get(chat_id)
        return -math.inf if last is None else last + self.chat_cooldown + GUARD

    def next(
        self, now: float, heads: Mapping[str, int], messages: Sequence[int] = ()
    ) -> Grant | MessageGrant | Wait:
        """What starts a send now, given each broadcast's next chat and the chats of the
        transactional messages waiting, in their order; or how long to wait.

        `heads` holds only broadcasts that have a recipient ready; a granted start is
        counted at once, so the caller must send it.
        """
        candidates = [uid for uid in heads if uid in self._broadcasts]
        if not candidates and not messages:
            return Wait(math.inf)
        limit = self.bot_limit(candidates, messages=bool(messages))
        earliest = max(self._halted_until, self._bot.ready_at(limit))
        wait = math.inf
        # Transactional messages first: the first one whose chat is free takes the slot, so
        # a message to a chat just messaged does not hold back the others.
        for chat_id in messages:
            ready = max(earliest, self.chat_free_at(chat_id))
            if ready <= now:
                self._bot.take(now, limit)
                self._note_chat(chat_id, now)
                return MessageGrant(chat_id)
            wait = min(wait, ready)
        chosen: str | None = None
        for uid in candidates:
            broadcast = self._broadcasts[uid]
            ready = max(earliest, broadcast.schedule.ready_at(), self.chat_free_at(heads[uid]))
            if ready > now:
                wait = min(wait, ready)
            elif chosen is None or broadcast.served < self._broadcasts[chosen].served:
                chosen = uid
        if chosen is None:
            return Wait(wait)
        self._turn += 1
        broadcast = self._broadcasts[chosen]
        broadcast.served = self._turn
        broadcast.schedule.take(now)
        self._bot.take(now, limit)
        self._note_chat(heads[chosen], now)
        return Grant(chosen)

    def started(self, uid: str | None, chat_id: int, *, granted: float, at: float) -> None:
        """The send granted at `granted` left at `at`, later: a broadcast's (`uid`) after its
        ledger mark, any after waiting for a connection or a busy event loop. Counting it when
        it left keeps the window guard true of arrivals however long that took; the GCRA
        schedules keep their slots, so the rate is unchanged. A transactional message has no
        `uid`: it moves the bot's and the chat's start only."""
        if at <= granted:
            return
        self._bot.moved(granted, at)
        broadcast = None if uid is None else self._broadcasts.get(uid)
        if broadcast is not None:
            broadcast.schedule.moved(granted, at)
        if self._chats.get(chat_id) == granted:
            self._chats[chat_id] = at

    def _note_chat(self, chat_id: int, now: float) -> None:
        self._chats[chat_id] = now
        if len(self._chats) >= self._chats_sweep_at:
            horizon = now - self.chat_cooldown - GUARD
            self._chats = {chat: at for chat, at in self._chats.items() if at > horizon}
            self._chats_sweep_at = max(1024, 2 * len(self._chats))
