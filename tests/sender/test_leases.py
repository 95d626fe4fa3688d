"""Bot lease decisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from herald.core.envelopes import Lease
from herald.sender.leases import Move, plan

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def lease(holder: str, seconds: float) -> Lease:
    return Lease(bot_id="1", holder=holder, expires=NOW + timedelta(seconds=seconds))


@pytest.mark.parametrize(
    ("current", "move"),
    [
        (None, Move.CREATE),
        (lease("me", 3), Move.RENEW),
        (lease("me", -3), Move.RENEW),
        (lease("other", 3), Move.WAIT),
        (lease("other", -0.1), Move.TAKE),
        (lease("other", 0), Move.TAKE),
    ],
    ids=["free", "own", "own-expired", "held-by-other", "expired", "expiring-now"],
)
def test_plan(current: Lease | None, move: Move) -> None:
    step = plan(current, bot_id="1", me="me", now=NOW, seconds=5)
    assert step.move is move
    if move is Move.WAIT:
        assert step.lease is None
    else:
        assert step.lease == Lease(bot_id="1", holder="me", expires=NOW + timedelta(seconds=5))
