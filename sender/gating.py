"""Whether an active broadcast may send its next row now: its deadline, its Stars budget and
its bot's daily Stars budget.
Pure: the clock and the count of paid sends are arguments; :mod:`herald.sender.sending`
acts on the answer (gives rows back, reports a fault).
"""

from __future__ import annotations

import enum
from datetime import datetime

from herald.core.broadcasts import MESSAGES_PER_STAR
from herald.core.envelopes import SendLimits, SendRate

__all__ = ["MESSAGES_PER_STAR", "Gate", "daily_allowance", "gate", "paid_allowance"]


class Gate(enum.StrEnum):
    OPEN = "open"  # send
    DEADLINE_PASSED = "deadline_passed"  # never send again; the operator reports it
    BUDGET_SPENT = "budget_spent"  # the Stars budget pays for no more: a BudgetExhausted fault
    DAILY_BUDGET_SPENT = "daily_budget_spent"  # the bot's Stars for today are spent


def paid_allowance(rate: SendRate) -> int | None:
    """How many paid messages the Stars budget pays for; None when nothing limits them."""
    if not rate.allow_paid_broadcast or rate.stars_budget is None:
        return None
    return rate.stars_budget * MESSAGES_PER_STAR


def daily_allowance(limits: SendLimits | None) -> int | None:
    """How many paid messages the bot's daily Stars budget pays for; None: no daily limit."""
    if limits is None or limits.stars_per_day is None:
        return None
    return limits.stars_per_day * MESSAGES_PER_STAR


def gate(
    *,
    deadline: datetime | None,
    rate: SendRate,
    paid_sent: int,
    now: datetime,
    limits: SendLimits | None = None,
    paid_today: int = 0,
) -> Gate:
    """What stands before the next send of a broadcast that has sent `paid_sent` paid
    messages so far (in the ledger and in flight), of a bot that sent `paid_today` paid
    messages today (UTC). The deadline is checked first: past it, a spent budget no longer
    matters."""
    if deadline is not None and now >= deadline:
        return Gate.DEADLINE_PASSED
    allowance = paid_allowance(rate)
    if allowance is not None and paid_sent + 1 > allowance:
        return Gate.BUDGET_SPENT
    daily = daily_allowance(limits)
    if rate.allow_paid_broadcast and daily is not None and paid_today + 1 > daily:
        return Gate.DAILY_BUDGET_SPENT
    return Gate.OPEN
