"""The pacing scheduler, driven by a simulated clock: every start it grants is a send."""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import Counter
from collections.abc import Callable

import pytest

from herald.core.envelopes import SendRate
from herald.sender.pacing import GUARD, Grant, MessageGrant, Pacer, Wait, fair_shares

HeadsOf = Callable[[str, int], int | None]


def run(
    pacer: Pacer, heads_of: HeadsOf, *, until: float, start: float = 0.0, late: float = 0.0
) -> list[tuple[float, str]]:
    """Grant as fast as the pacer allows from `start` to `until`; returns (time, uid) starts.

    `heads_of(uid, n)` gives the n-th recipient's chat of broadcast `uid`, or None when it
    has no more work. Each wait ends `late` seconds after the time asked for, as a timer of
    a busy event loop does."""
    now = start
    served: Counter[str] = Counter()
    starts: list[tuple[float, str]] = []
    while now < until:
        heads: dict[str, int] = {}
        for uid in pacer_uids(pacer):
            chat = heads_of(uid, served[uid])
            if chat is not None:
                heads[uid] = chat
        decision = pacer.next(now, heads)
        if isinstance(decision, Grant):
            starts.append((now, decision.uid))
            served[decision.uid] += 1
        else:
            assert isinstance(decision, Wait) and decision.until > now
            now = decision.until + late
    return starts


def rate(messages_per_second: float, *, paid: bool = False) -> SendRate:
    return SendRate(messages_per_second=messages_per_second, allow_paid_broadcast=paid)


def pacer_uids(pacer: Pacer) -> list[str]:
    return list(pacer._broadcasts)


def unique_chats(offset: int = 0) -> HeadsOf:
    return lambda uid, n: offset + n + (10**6 if uid == "b" else 0)


def max_in_window(times: list[float], period: float = 1.0) -> int:
    times = sorted(times)
    best = start = 0
    for end, t in enumerate(times):
        while not times[start] + period > t:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_one_broadcast_reaches_its_rate_and_never_exceeds_it() -> None:
    pacer = Pacer()
    pacer.configure("a", rate(20))
    starts = run(pacer, unique_chats(), until=10.0)
    assert max_in_window([t for t, _ in starts]) <= 20
    assert len(starts) / 10.0 >= 0.98 * 20


def test_no_burst_after_idle() -> None:
    pacer = Pacer()
    pacer.configure("a", rate(10))
    first = run(pacer, unique_chats(), until=2.0)
    # Nothing to send for 5 s, then work again: still 10 per second, not a catch-up.
    later = run(pacer, unique_chats(1000), until=8.0, start=7.0)
    assert len(first) >= 19
    assert max_in_window([t for t, _ in later]) <= 10
    gaps = [b - a for (a, _), (b, _) in itertools.pairwise(later)]
    assert min(gaps) >= 0.1 - 1e-9


def test_two_broadcasts_share_the_bot_limit_fairly() -> None:
    pacer = Pacer()
    pacer.configure("a", rate(50))
    pacer.configure("b", rate(50))
    starts = run(pacer, unique_chats(), until=10.0)
    per = Counter(uid for _, uid in starts)
    assert max_in_window([t for t, _ in starts]) <= 30
    assert per["a"] == pytest.approx(per["b"], abs=2)
    assert len(starts) / 10 >= 0.98 * 30 * (1 - GUARD)


def test_a_slow_broadcast_keeps_its_rate_and_the_rest_goes_to_the_other() -> None:
    pacer = Pacer()
    pacer.configure("a", rate(5))
    pacer.configure("b", rate(100))
    starts = run(pacer, unique_chats(), until=10.0)
    per = Counter(uid for _, uid in starts)
    assert per["a"] == pytest.approx(50, abs=2)
    assert per["b"] == pytest.approx(245, rel=0.03)


def test_paid_broadcasts_go_up_to_the_paid_limit() -> None:
    pacer = Pacer()
    pacer.configure("a", rate(2000, paid=True))
    starts = run(pacer, unique_chats(), until=3.0)
    assert max_in_window([t for t, _ in starts]) <= 1000
    assert len(starts) >= 0.98 * 3000 * (1 - GUARD) - 1000 * GUARD


@pytest.mark.parametrize("late", [0.001, 0.004, 0.01])
def test_the_paid_rate_holds_when_every_wake_up_is_late(late: float) -> None:
    # At 1000 msg/s an interval is 1 ms: a wake-up late by more than that keeps its slots
    # (up to CATCH_UP), so the rate is the limit's, not one start per late wake-up.
    pacer = Pacer()
    pacer.configure("a", rate(1000, paid=True))
    starts = run(pacer, unique_chats(), until=5.0, late=late)
    assert max_in_window([t for t, _ in starts]) <= 1000
    assert len(starts) >= 0.98 * 5000 * (1 - GUARD) - 1000 * GUARD


def test_a_schedule_idle_longer_than_catch_up_does_not_burst() -> None:
    pacer = Pacer()
    pacer.configure("a", rate(1000, paid=True))
    run(pacer, unique_chats(), until=1.0)
    # Idle for 1 s: at most CATCH_UP's worth of starts may come back to back, not more.
    later = run(pacer, unique_chats(10**5), until=2.2, start=2.0)
    assert max_in_window([t for t, _ in later], period=0.01) <= 1 + 10


def test_a_free_broadcast_holds_a_paid_neighbour_to_the_free_limit() -> None:
    pacer = Pacer()
    pacer.configure("a", rate(500, paid=True))
    pacer.configure("b", rate(500))
    starts = run(pacer, unique_chats(), until=5.0)
    assert max_in_window([t for t, _ in starts]) <= 30


def test_chat_cooldown_spans_broadcasts() -> None:
    pacer = Pacer()
    pacer.configure("a", rate(30))
    pacer.configure("b", rate(30))
    # Both broadcasts go to the same chats, in the same order.
    starts = run(pacer, lambda uid, n: n if n < 20 else None, until=30.0)
    assert len(starts) == 40
    per_chat: dict[int, list[float]] = {}
    served: Counter[str] = Counter()
    for time, uid in starts:
        per_chat.setdefault(served[uid], []).append(time)
        served[uid] += 1
    for times in per_chat.values():
        assert len(times) == 2
        assert abs(times[1] - times[0]) >= 1.0


def test_halt_stops_every_start_until_it_ends() -> None:
    pacer = Pacer()
    pacer.configure("a", rate(30))
    pacer.halt(5.0)
    decision = pacer.next(1.0, {"a": 1})
    assert decision == Wait(5.0)
    assert isinstance(pacer.next(5.0, {"a": 1}), Grant)


def test_nothing_to_send_waits_forever() -> None:
    pacer = Pacer()
    pacer.configure("a", rate(30))
    assert pacer.next(0.0, {}) == Wait(math.inf)


@pytest.mark.parametrize(
    ("limit", "caps", "expected"),
    [
        (30, {"a": 50, "b": 50}, {"a": 15, "b": 15}),
        (30, {"a": 5, "b": 50}, {"a": 5, "b": 25}),
        (30, {"a": 5, "b": 8, "c": 100}, {"a": 5, "b": 8, "c": 17}),
        (30, {"a": 10}, {"a": 10}),
        (1000, {"a": 400, "b": 900}, {"a": 400, "b": 600}),
    ],
    ids=["equal", "capped-below-share", "two-capped", "alone-below-limit", "paid"],
)
def test_fair_shares(limit: float, caps: dict[str, float], expected: dict[str, float]) -> None:
    assert fair_shares(limit, caps) == pytest.approx(expected)


# --- transactional messages ---------------------------------------------------------------

Start = tuple[float, str, int]  # (time, "message" or the broadcast's uid, chat)


def run_with_messages(
    pacer: Pacer,
    heads_of: HeadsOf,
    arrivals: list[tuple[float, int]],
    *,
    until: float,
) -> list[Start]:
    """Like :func:`run`, with transactional messages to chat c arriving at time t for each
    (t, c) of `arrivals`, waiting in the order they came."""
    now = 0.0
    served: Counter[str] = Counter()
    coming = sorted(arrivals)
    waiting: list[int] = []
    starts: list[Start] = []
    while now < until:
        while coming and coming[0][0] <= now:
            waiting.append(coming.pop(0)[1])
        heads: dict[str, int] = {}
        for uid in pacer_uids(pacer):
            chat = heads_of(uid, served[uid])
            if chat is not None:
                heads[uid] = chat
        decision = pacer.next(now, heads, waiting)
        if isinstance(decision, MessageGrant):
            waiting.remove(decision.chat_id)
            starts.append((now, "message", decision.chat_id))
        elif isinstance(decision, Grant):
            starts.append((now, decision.uid, heads[decision.uid]))
            served[decision.uid] += 1
        else:
            assert decision.until > now
            now = min(decision.until, coming[0][0] if coming else math.inf)
    return starts


def test_transactional_messages_alone_reach_the_bots_limit_and_never_exceed_it() -> None:
    pacer = Pacer()
    pacer.limit(free=20, paid=20)  # a Bot's own limits, with no broadcast
    arrivals = [(0.0, 50_000 + n) for n in range(200)]
    starts = run_with_messages(pacer, unique_chats(), arrivals, until=10.0)
    assert {kind for _, kind, _ in starts} == {"message"}
    assert max_in_window([t for t, _, _ in starts]) <= 20
    assert len(starts) >= 0.98 * 20 * 10 * (1 - GUARD)


def test_messages_go_ahead_of_a_broadcast_at_the_bots_full_rate() -> None:
    pacer = Pacer()
    pacer.configure("a", rate(30))
    # A burst of 15 messages at 2 s, and one every half second from 5 s to 8 s.
    arrivals = [(2.0, 50_000 + n) for n in range(15)]
    arrivals += [(5.0 + n / 2, 60_000 + n) for n in range(6)]
    starts = run_with_messages(pacer, unique_chats(), arrivals, until=10.0)
    times = [t for t, _, _ in starts]
    assert max_in_window(times) <= 30
    messages = [(t, chat) for t, kind, chat in starts if kind == "message"]
    assert len(messages) == len(arrivals)
    # Ahead: no broadcast send starts between a message's arrival and its start.
    arrived = dict((chat, t) for t, chat in arrivals)
    for started, chat in messages:
        between = [t for t, kind, _ in starts if kind == "a" and arrived[chat] <= t < started]
        assert between == [], (chat, arrived[chat], started)
    # The broadcast slows by what the messages used: together they keep the bot's rate.
    broadcast = sum(1 for _, kind, _ in starts if kind == "a")
    assert broadcast + len(messages) >= 0.98 * 30 * 10 * (1 - GUARD)
    assert broadcast <= 30 * 10 - len(messages)


def test_one_message_per_second_per_chat_across_messages_and_broadcasts() -> None:
    pacer = Pacer()
    pacer.configure("a", rate(30))
    # The broadcast's first recipients are chats 0, 1, 2...; messages to chat 0 (three in a
    # row) and to chat 1 arrive as it starts, then one to another chat.
    arrivals = [(0.0, 0), (0.0, 0), (0.0, 1), (0.0, 0), (0.01, 7_777)]
    starts = run_with_messages(pacer, unique_chats(), arrivals, until=5.0)
    per_chat: dict[int, list[float]] = {}
    for t, _, chat in starts:
        per_chat.setdefault(chat, []).append(t)
    for times in per_chat.values():
        assert all(b - a >= 1.0 for a, b in itertools.pairwise(times))
    assert len(per_chat[0]) == 4  # three messages and the broadcast's
    assert len(per_chat[1]) == 2
    # A message held back by its chat does not hold back one to a free chat.
    [(at, _, _)] = [s for s in starts if s[2] == 7_777]
    assert at < 0.1


def test_a_message_holds_a_paid_broadcast_to_the_free_limit_while_it_waits() -> None:
    pacer = Pacer()
    pacer.configure("a", rate(1000, paid=True))
    arrivals = [(1.0 + n / 10, 50_000 + n) for n in range(10)]
    starts = run_with_messages(pacer, unique_chats(), arrivals, until=3.0)
    # Each message started with fewer than 30 sends in the second before it.
    times = [t for t, _, _ in starts]
    for t, kind, _ in starts:
        if kind == "message":
            assert sum(1 for other in times if t - 1.0 < other < t) < 30
    assert sum(1 for _, kind, _ in starts if kind == "message") == 10


def test_a_halt_holds_transactional_messages_too() -> None:
    pacer = Pacer()
    pacer.halt(5.0)
    assert pacer.next(1.0, {}, [42]) == Wait(5.0)
    assert pacer.next(5.0, {}, [42]) == MessageGrant(42)


def run_with_late_starts(
    pacer: Pacer, *, delays: Callable[[int], float], until: float, report: bool
) -> list[tuple[float, int]]:
    """Grant one broadcast's sends as fast as the pacer allows, each leaving `delays(n)`
    after its grant (its ledger mark took that long), reported to the pacer when it leaves
    if `report`; returns (left at, chat) of every send."""
    now, served = 0.0, 0
    leaving: list[tuple[float, float, int]] = []  # (leaves at, granted at, chat)
    left: list[tuple[float, int]] = []
    while now < until:
        while leaving and leaving[0][0] <= now:
            at, granted, chat = heapq.heappop(leaving)
            left.append((at, chat))
            if report:
                pacer.started("a", chat, granted=granted, at=at)
        decision = pacer.next(now, {"a": served})
        if isinstance(decision, Grant):
            heapq.heappush(leaving, (now + delays(served), now, served))
            served += 1
            continue
        assert isinstance(decision, Wait)
        now = min(decision.until, leaving[0][0] if leaving else math.inf)
    return left


def test_a_start_counted_when_it_left_keeps_the_limit_of_arrivals() -> None:
    # Marks mostly fast, some slow: a slow one leaves with those granted after it.
    draw = random.Random(3)

    def delays(n: int) -> float:
        return 0.3 if draw.random() < 0.05 else draw.uniform(0.0, 0.005)

    reported = Pacer()
    reported.configure("a", rate(30))
    left = run_with_late_starts(reported, delays=delays, until=20.0, report=True)
    assert max_in_window([t for t, _ in left]) <= 30
    # Slowed by no more than the guard's share and the slow marks' bunching.
    assert len(left) >= 0.95 * 30 * 19

    draw = random.Random(3)
    counted_at_grant = Pacer()
    counted_at_grant.configure("a", rate(30))
    left = run_with_late_starts(counted_at_grant, delays=delays, until=20.0, report=False)
    assert max_in_window([t for t, _ in left]) > 30  # what started() prevents


def run_with_late_messages(
    pacer: Pacer, *, delays: Callable[[int], float], until: float, report: bool
) -> list[float]:
    """Grant transactional messages to distinct chats as fast as the bot's limit allows,
    each leaving `delays(n)` after its grant (it waited for a connection), reported to the
    pacer when it leaves if `report`; returns when each left."""
    now, sent = 0.0, 0
    leaving: list[tuple[float, float, int]] = []  # (leaves at, granted at, chat)
    left: list[float] = []
    while now < until:
        while leaving and leaving[0][0] <= now:
            at, granted, chat = heapq.heappop(leaving)
            left.append(at)
            if report:
                pacer.started(None, chat, granted=granted, at=at)
        decision = pacer.next(now, {}, [100_000 + sent])
        if isinstance(decision, MessageGrant):
            heapq.heappush(leaving, (now + delays(sent), now, decision.chat_id))
            sent += 1
            continue
        assert isinstance(decision, Wait)
        now = min(decision.until, leaving[0][0] if leaving else math.inf)
    return left


def test_a_transactional_message_counted_when_it_left_keeps_the_bot_limit() -> None:
    draw = random.Random(5)

    def delays(n: int) -> float:
        return 0.2 if draw.random() < 0.05 else draw.uniform(0.0, 0.005)

    left = run_with_late_messages(Pacer(), delays=delays, until=20.0, report=True)
    assert max_in_window(left) <= 30
    assert len(left) >= 0.95 * 30 * 19

    draw = random.Random(5)
    left = run_with_late_messages(Pacer(), delays=delays, until=20.0, report=False)
    assert max_in_window(left) > 30  # what started(None, ...) prevents
