"""Bot lease decisions, and which bots a sender wants to hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from herald.core.contents import Content
from herald.core.envelopes import BroadcastState, ControlRecord, Lease, SendRate
from herald.sender.leases import Move, plan, wanted

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


def control(bot_id: str, state: BroadcastState, *, token: str | None = "sealed") -> ControlRecord:
    return ControlRecord(
        uid=f"uid-{bot_id}-{state}",
        namespace="default",
        name="b",
        generation=1,
        bot_id=bot_id,
        token=token,
        content=Content(text="hi"),
        rate=SendRate(messages_per_second=10),
        state=state,
    )


@pytest.mark.parametrize(
    ("broadcasts", "bots", "traffic", "held"),
    [
        pytest.param([control("1", BroadcastState.ACTIVE)], [], {}, {"1"}, id="broadcast"),
        pytest.param([control("1", BroadcastState.PAUSED)], [], {}, {"1"}, id="paused-kept"),
        pytest.param([control("1", BroadcastState.STOPPED)], [], {}, set(), id="stopped"),
        pytest.param(
            [control("1", BroadcastState.ACTIVE, token=None)], [], {}, set(), id="no-token"
        ),
        pytest.param([], ["2"], {"2": -10}, {"2"}, id="recent-traffic"),
        pytest.param([], ["2"], {"2": -301}, set(), id="traffic-past-the-window"),
        pytest.param([], ["2"], {"2": 5}, {"2"}, id="traffic-from-a-clock-ahead"),
        pytest.param([], [], {"2": -10}, set(), id="traffic-without-a-bot-record"),
        pytest.param([], ["2"], {}, set(), id="a-bot-record-without-traffic"),
        pytest.param(
            [control("1", BroadcastState.ACTIVE)], ["2"], {"2": -1}, {"1", "2"}, id="both"
        ),
    ],
)
def test_wanted(
    broadcasts: list[ControlRecord], bots: list[str], traffic: dict[str, float], held: set[str]
) -> None:
    at = {bot_id: NOW + timedelta(seconds=seconds) for bot_id, seconds in traffic.items()}
    assert wanted(broadcasts=broadcasts, bots=bots, traffic=at, now=NOW, window=300) == held
