"""Replicas follow the bots with active work, within the configured bounds."""

from __future__ import annotations

import pytest

from herald.operator.scaling import desired_replicas
from herald.operator.settings import ScalingSettings


@pytest.mark.parametrize(
    ("bots", "minimum", "maximum", "expected"),
    [
        pytest.param([], 0, 10, 0, id="nothing-active-is-zero"),
        pytest.param(["1"], 0, 10, 1, id="one-bot-one-replica"),
        pytest.param(["1", "1", "1"], 0, 10, 1, id="one-bot-many-broadcasts-one-replica"),
        pytest.param(["1", "2", "3"], 0, 10, 3, id="a-replica-per-bot"),
        pytest.param(["1", "2", "3"], 0, 2, 2, id="capped-at-max"),
        pytest.param([], 1, 10, 1, id="floor-when-idle"),
    ],
)
def test_desired_replicas(bots: list[str], minimum: int, maximum: int, expected: int) -> None:
    assert desired_replicas(sending_bots=bots, minimum=minimum, maximum=maximum) == expected


def test_bounds_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERALD_SCALING_MIN_REPLICAS", "3")
    monkeypatch.setenv("HERALD_SCALING_MAX_REPLICAS", "2")
    with pytest.raises(ValueError, match="must not exceed"):
        ScalingSettings()
