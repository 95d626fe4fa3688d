"""Telegram's flood limits as sliding one-second windows over accepted sends.

A send at time ``now`` is admitted only while fewer than the limit were accepted in
``(now - 1, now]``; hence no half-open one-second window ``[t, t + 1)`` can ever hold more
accepted sends than the limit, which is what a sender's pacing is judged by.

With :class:`~herald.emulator.settings.Escalation`, a token over its global limit is in a
flood wait until the retry_after it was told: every send before then is refused too, and
each refusal close to the previous one lengthens the wait.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass

from herald.emulator.settings import Limits

__all__ = ["PERIOD", "RateLimiter", "SlidingWindow"]

PERIOD = 1.0


class SlidingWindow:
    """Times of the sends accepted within the last period."""

    __slots__ = ("_times",)

    def __init__(self) -> None:
        self._times: deque[float] = deque()

    def count(self, now: float) -> int:
        times = self._times
        # Written as `t + PERIOD > now` everywhere, so the summary's exact computation over
        # the same floats agrees with what was admitted here.
        while times and not times[0] + PERIOD > now:
            times.popleft()
        return len(times)

    def retry_after(self, now: float) -> int:
        """Whole seconds until the oldest send leaves the window; Telegram never says 0."""
        if not self._times:
            return 1
        return max(1, math.ceil(self._times[0] + PERIOD - now))

    def add(self, now: float) -> None:
        self.count(now)  # prunes, so an unlimited window does not grow forever
        times = self._times
        if times and now < times[-1]:
            # Counted when it arrived, answered after a later one whose body parsed first.
            bisect.insort(times, now)
        else:
            times.append(now)


@dataclass(slots=True)
class _Flood:
    """A token's flood wait: refused until `until`; `strikes` 429s so far, the last at `last`."""

    until: float
    strikes: int
    last: float


class RateLimiter:
    """The global (free or paid) and per-chat windows of every bot token."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._tokens: dict[str, SlidingWindow] = {}
        self._chats: dict[tuple[str, int], SlidingWindow] = {}
        self._floods: dict[str, _Flood] = {}
        self._sweep_at = 1024

    def retry_after(self, token: str, chat_id: int, *, paid: bool, now: float) -> int | None:
        """Seconds to wait if a send now would break a limit, else None."""
        limit = self.limits.paid_rate if paid else self.limits.rate
        flood = self._floods.get(token)
        if flood is not None and now < flood.until:
            return self._strike(token, now, math.ceil(flood.until - now))
        window = self._tokens.get(token)
        if limit and window is not None and window.count(now) >= limit:
            return self._strike(token, now, window.retry_after(now))
        window = self._chats.get((token, chat_id))
        per_chat = self.limits.per_chat_rate
        if per_chat and window is not None and window.count(now) >= per_chat:
            return window.retry_after(now)
        return None

    def _strike(self, token: str, now: float, wait: int) -> int:
        """The retry_after of a 429 for `token` now; `wait` is what the limit alone says."""
        escalation = self.limits.escalation
        if escalation is None:
            return wait
        flood = self._floods.get(token)
        recent = flood is not None and now - flood.last < escalation.memory_seconds
        strikes = flood.strikes + 1 if flood is not None and recent else 1
        grown = math.ceil(escalation.factor ** (strikes - 1))
        wait = min(escalation.max_retry_after, max(wait, grown))
        until = now + wait
        if flood is not None and recent:
            until = max(until, flood.until)
        self._floods[token] = _Flood(until=until, strikes=strikes, last=now)
        return max(1, math.ceil(until - now))

    def accept(self, token: str, chat_id: int, now: float) -> None:
        self._tokens.setdefault(token, SlidingWindow()).add(now)
        self._chats.setdefault((token, chat_id), SlidingWindow()).add(now)
        if len(self._chats) >= self._sweep_at:
            self._sweep(now)

    def _sweep(self, now: float) -> None:
        # A broadcast touches each chat once; forgetting idle chats keeps memory flat, and
        # sweeping only when the table doubles keeps the cost amortised O(1) per send.
        self._chats = {key: w for key, w in self._chats.items() if w.count(now)}
        self._sweep_at = max(1024, 2 * len(self._chats))
