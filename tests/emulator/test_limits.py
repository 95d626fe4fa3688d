"""Telegram's flood limits: sliding one-second windows, per token and per chat."""

from __future__ import annotations

import random

import pytest

from herald.emulator.clocks import ManualClock
from herald.emulator.emulating import EmulatorState
from herald.emulator.limits import RateLimiter, SlidingWindow
from herald.emulator.recording import max_per_period
from herald.emulator.settings import EmulatorConfig, Limits

TOKEN = "123:abc"


def test_global_rate_admits_the_limit_per_sliding_second() -> None:
    limiter = RateLimiter(Limits(rate=3, per_chat_rate=0))
    for chat in range(3):
        assert limiter.retry_after(TOKEN, chat, paid=False, now=10.0) is None
        limiter.accept(TOKEN, chat, 10.0)
    assert limiter.retry_after(TOKEN, 99, paid=False, now=10.0) == 1
    assert limiter.retry_after(TOKEN, 99, paid=False, now=10.999) == 1
    # Exactly one second later the first sends have left the window.
    assert limiter.retry_after(TOKEN, 99, paid=False, now=11.0) is None


def test_limits_are_per_token() -> None:
    limiter = RateLimiter(Limits(rate=1, per_chat_rate=0))
    limiter.accept(TOKEN, 1, 0.0)
    assert limiter.retry_after(TOKEN, 2, paid=False, now=0.0) == 1
    assert limiter.retry_after("456:def", 2, paid=False, now=0.0) is None


def test_paid_broadcast_raises_the_global_limit() -> None:
    limiter = RateLimiter(Limits(rate=2, paid_rate=5, per_chat_rate=0))
    for chat in range(2):
        limiter.accept(TOKEN, chat, 0.0)
    assert limiter.retry_after(TOKEN, 10, paid=False, now=0.0) == 1
    for chat in range(10, 13):
        assert limiter.retry_after(TOKEN, chat, paid=True, now=0.0) is None
        limiter.accept(TOKEN, chat, 0.0)
    assert limiter.retry_after(TOKEN, 20, paid=True, now=0.0) == 1


def test_per_chat_limit() -> None:
    limiter = RateLimiter(Limits(rate=30, per_chat_rate=1))
    limiter.accept(TOKEN, 7, 0.0)
    assert limiter.retry_after(TOKEN, 7, paid=False, now=0.5) == 1
    assert limiter.retry_after(TOKEN, 7, paid=True, now=0.5) == 1
    assert limiter.retry_after(TOKEN, 8, paid=False, now=0.5) is None
    assert limiter.retry_after(TOKEN, 7, paid=False, now=1.0) is None


def test_zero_disables_a_limit() -> None:
    limiter = RateLimiter(Limits(rate=0, per_chat_rate=0))
    for _ in range(5000):
        limiter.accept(TOKEN, 1, 0.0)
    assert limiter.retry_after(TOKEN, 1, paid=False, now=0.0) is None


def test_forgetting_idle_chats_keeps_active_windows() -> None:
    limiter = RateLimiter(Limits(rate=0, per_chat_rate=1))
    for chat in range(1, 4000):
        limiter.accept(TOKEN, chat, 0.0)
    limiter.accept(TOKEN, 0, 0.9)
    for chat in range(4000, 5000):  # sweeps now forget the chats sent to at 0.0
        limiter.accept(TOKEN, chat, 1.2)
    assert len(limiter._chats) <= 1001 + 1
    assert limiter.retry_after(TOKEN, 0, paid=False, now=1.3) == 1
    assert limiter.retry_after(TOKEN, 4500, paid=False, now=1.3) == 1
    assert limiter.retry_after(TOKEN, 5, paid=False, now=1.3) is None


@pytest.mark.parametrize(
    ("oldest", "now", "expected"),
    [(0.0, 0.0, 1), (0.0, 0.2, 1), (0.0, 0.9999, 1)],
    ids=["at-once", "later", "nearly-expired"],
)
def test_retry_after_is_a_whole_second_at_least(oldest: float, now: float, expected: int) -> None:
    window = SlidingWindow()
    window.add(oldest)
    assert window.retry_after(now) == expected


def _send(state: EmulatorState, chat: int, *, paid: bool = False) -> int:
    params = {"chat_id": chat, "text": "hi", "allow_paid_broadcast": paid}
    return state.call(TOKEN, "sendMessage", params).status


def test_state_answers_429_with_retry_after(clock: ManualClock) -> None:
    state = EmulatorState(EmulatorConfig(limits=Limits(rate=2, per_chat_rate=1)), clock=clock)
    assert _send(state, 1) == 200
    reply = state.call(TOKEN, "sendMessage", {"chat_id": 1, "text": "again"})
    assert reply.status == 429
    assert reply.body == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 1",
        "parameters": {"retry_after": 1},
    }
    assert _send(state, 2) == 200
    assert _send(state, 3) == 429  # the global limit now
    clock.advance(1.0)
    assert _send(state, 3) == 200
    summary = state.recorder.summary()
    assert summary.total == 3
    assert summary.too_many_requests == {TOKEN: 2}
    assert summary.errors == {429: 2}


def test_state_paid_broadcast(clock: ManualClock) -> None:
    state = EmulatorState(
        EmulatorConfig(limits=Limits(rate=1, paid_rate=3, per_chat_rate=0)), clock=clock
    )
    assert [_send(state, chat) for chat in (1, 2)] == [200, 429]
    assert [_send(state, chat, paid=True) for chat in (2, 3, 4)] == [200, 200, 429]


def test_storm_forces_429_for_its_duration(clock: ManualClock) -> None:
    state = EmulatorState(clock=clock)
    state.configure({"faults": {"storm": {"retry_after": 7, "seconds": 3}}})
    reply = state.call(TOKEN, "sendMessage", {"chat_id": 1, "text": "hi"})
    assert reply.status == 429
    assert reply.body["parameters"] == {"retry_after": 7}
    clock.advance(2.9)
    assert _send(state, 1) == 429
    clock.advance(0.2)
    assert _send(state, 1) == 200
    assert state.call(TOKEN, "getMe", {}).status == 200  # only sends are stormed


def test_no_one_second_window_ever_exceeds_the_limit(clock: ManualClock) -> None:
    """Random bursts against the limiter; the exact window maximum stays at the limit."""
    rate = 10
    state = EmulatorState(EmulatorConfig(limits=Limits(rate=rate, per_chat_rate=0)), clock=clock)
    draw = random.Random(42)
    for attempt in range(3000):
        clock.advance(draw.choice([0.0, 0.0, 0.001, 0.01, 0.05, 0.3]))
        _send(state, attempt)
    times = [message.monotonic for message in state.recorder.messages()]
    summary = state.recorder.summary()
    assert summary.max_per_second == {TOKEN: rate}
    assert summary.too_many_requests[TOKEN] > 0
    # Brute force over windows starting at every accepted send.
    assert max(sum(1 for u in times if t <= u < t + 1.0) for t in times) == rate


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        ([], 0),
        ([0.0], 1),
        ([0.0, 0.5, 0.999], 3),
        ([0.0, 0.5, 1.0], 2),
        ([0.0, 1.0, 2.0, 2.1, 2.2, 3.15], 3),
        ([5.0, 0.0, 0.2, 5.5], 2),
    ],
    ids=["none", "one", "within", "boundary-excluded", "later-burst", "unsorted"],
)
def test_max_per_period(times: list[float], expected: int) -> None:
    assert max_per_period(times) == expected


def test_escalating_flood_waits_grow_for_a_bot_that_keeps_hitting_its_limit() -> None:
    limits = Limits(rate=1, per_chat_rate=0, escalation={"max_retry_after": 8})
    limiter = RateLimiter(limits)
    now, waits = 0.0, []
    # A client that honours each retry_after, then sends two at once again.
    for _ in range(5):
        limiter.accept(TOKEN, 1, now)
        wait = limiter.retry_after(TOKEN, 2, paid=False, now=now)
        assert wait is not None
        waits.append(wait)
        now += wait
    assert waits == [1, 2, 4, 8, 8]
    # Long enough without a 429, and the wait starts from one second again.
    now += limits.escalation.memory_seconds if limits.escalation else 0
    limiter.accept(TOKEN, 1, now)
    assert limiter.retry_after(TOKEN, 2, paid=False, now=now) == 1


def test_a_send_inside_a_flood_wait_lengthens_it() -> None:
    limiter = RateLimiter(Limits(rate=1, per_chat_rate=0, escalation={}))
    limiter.accept(TOKEN, 1, 0.0)
    assert limiter.retry_after(TOKEN, 2, paid=False, now=0.0) == 1
    # Not waiting: refused, for longer than it was told.
    assert limiter.retry_after(TOKEN, 2, paid=False, now=0.5) == 2
    assert limiter.retry_after(TOKEN, 2, paid=False, now=2.4) == 4


def test_without_escalation_a_wait_is_what_the_window_says() -> None:
    limiter = RateLimiter(Limits(rate=1, per_chat_rate=0))
    for second in range(3):
        limiter.accept(TOKEN, 1, float(second))
        assert limiter.retry_after(TOKEN, 2, paid=False, now=float(second)) == 1


def test_a_send_is_counted_when_it_arrived_not_when_it_was_answered(clock: ManualClock) -> None:
    state = EmulatorState(EmulatorConfig(limits=Limits(rate=2, per_chat_rate=0)), clock=clock)
    now, params = clock(), {"text": "hi"}
    # Both answered now, having arrived 1.1 and 0.8 seconds ago.
    first, second = now - 1.1, now - 0.8
    assert state.call(TOKEN, "sendMessage", {"chat_id": 1, **params}, arrived=first).status == 200
    assert state.call(TOKEN, "sendMessage", {"chat_id": 2, **params}, arrived=second).status == 200
    recorded = [m.monotonic for m in state.recorder.messages(token=TOKEN)]
    assert recorded == [first, second]
    # Now the first has left the window: one more fits, then the limit is reached.
    assert _send(state, 3) == 200
    assert _send(state, 4) == 429


def test_a_window_stays_ordered_when_a_send_is_added_out_of_order() -> None:
    window = SlidingWindow()
    for at in (1.0, 1.4, 1.2):
        window.add(at)
    assert window.count(2.3) == 1  # 1.0 and 1.2 have left, 1.4 is inside
    assert window.retry_after(2.3) == 1
