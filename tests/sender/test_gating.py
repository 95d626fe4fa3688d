"""The send gate: whether an active broadcast may send its next row now."""

from __future__ import annotations

import datetime as dt

import pytest

from herald.core.envelopes import SendLimits, SendRate
from herald.sender.gating import Gate, daily_allowance, gate, paid_allowance

NOW = dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)
SECOND = dt.timedelta(seconds=1)
FREE = SendRate(messages_per_second=25)
PAID = SendRate(messages_per_second=100, allow_paid_broadcast=True)
BUDGET_3 = SendRate(messages_per_second=100, allow_paid_broadcast=True, stars_budget=3)

CASES = [
    # id, deadline, rate, paid sent so far, expected
    ("no-deadline-no-budget", None, FREE, 0, Gate.OPEN),
    ("before-the-deadline", NOW + SECOND, FREE, 0, Gate.OPEN),
    ("at-the-deadline", NOW, FREE, 0, Gate.DEADLINE_PASSED),
    ("past-the-deadline", NOW - SECOND, FREE, 0, Gate.DEADLINE_PASSED),
    ("paid-without-budget-never-runs-out", None, PAID, 10**9, Gate.OPEN),
    ("budget-pays-the-last-message", None, BUDGET_3, 29, Gate.OPEN),
    ("budget-spent", None, BUDGET_3, 30, Gate.BUDGET_SPENT),
    ("deadline-before-budget", NOW, BUDGET_3, 30, Gate.DEADLINE_PASSED),
    (
        "budget-without-paid-limits-nothing",
        None,
        SendRate(messages_per_second=25, stars_budget=1),
        10**9,
        Gate.OPEN,
    ),
]


@pytest.mark.parametrize(
    ("deadline", "rate", "paid_sent", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_gate(deadline: dt.datetime | None, rate: SendRate, paid_sent: int, expected: Gate) -> None:
    assert gate(deadline=deadline, rate=rate, paid_sent=paid_sent, now=NOW) is expected


@pytest.mark.parametrize(
    ("rate", "expected"),
    [(FREE, None), (PAID, None), (BUDGET_3, 30)],
    ids=["free", "paid-without-budget", "budget-of-3-stars"],
)
def test_paid_allowance(rate: SendRate, expected: int | None) -> None:
    assert paid_allowance(rate) == expected


def test_the_bot_s_daily_budget_holds_its_paid_broadcasts_only() -> None:
    limits = SendLimits(messages_per_second=30, paid_messages_per_second=1000, stars_per_day=2)
    assert daily_allowance(limits) == 20
    assert daily_allowance(SendLimits(messages_per_second=30)) is None

    def at(rate: SendRate, paid_today: int, paid_sent: int = 0) -> Gate:
        return gate(
            deadline=None,
            rate=rate,
            paid_sent=paid_sent,
            now=NOW,
            limits=limits,
            paid_today=paid_today,
        )

    assert at(PAID, 19) is Gate.OPEN
    assert at(PAID, 20) is Gate.DAILY_BUDGET_SPENT
    # A free broadcast of the same bot pays nothing.
    assert at(FREE, 20) is Gate.OPEN
    # The broadcast's own budget is checked first.
    assert at(BUDGET_3, 20, paid_sent=30) is Gate.BUDGET_SPENT
