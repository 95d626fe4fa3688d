"""The one progress answer: status.progress, the admin bot and kubectl broadcast agree."""

from __future__ import annotations

import pytest

from herald.core.progress import Progress
from herald.core.statuses import BroadcastStatus


@pytest.mark.parametrize(
    ("progress", "percent", "cells"),
    [
        pytest.param(Progress(counted=False), 0, 0, id="not-counted-yet"),
        # Counted and nobody in it: nothing is left to reach, so it is over (Complete).
        pytest.param(Progress(done=0, total=0), 100, 10, id="empty-audience-is-done"),
        pytest.param(Progress(done=0, total=10), 0, 0, id="nothing-done"),
        pytest.param(Progress(done=1, total=3), 33, 3, id="rounds-down"),
        pytest.param(Progress(done=5, total=10), 50, 5, id="half"),
        pytest.param(Progress(done=999, total=1000), 99, 9, id="almost-is-not-done"),
        pytest.param(Progress(done=1000, total=1000), 100, 10, id="done"),
        pytest.param(Progress(done=12, total=10), 100, 10, id="overcount-is-capped"),
        pytest.param(Progress(done=-1, total=10), 0, 0, id="never-below-nothing"),
    ],
)
def test_percent_and_cells_round_down(progress: Progress, percent: int, cells: int) -> None:
    assert (progress.percent, progress.cells(10)) == (percent, cells)
    assert str(progress) == f"{percent}%"
    assert progress.complete == (percent == 100)


def test_a_bar_needs_a_cell() -> None:
    with pytest.raises(ValueError, match="at least one cell"):
        Progress(done=1, total=1).cells(0)


def test_progress_is_read_from_a_status() -> None:
    assert Progress.of(None) == Progress(counted=False)
    # No status.progress yet and nobody counted: the audience is not in the ledger yet.
    assert not Progress.of(BroadcastStatus()).counted
    assert str(Progress.of(BroadcastStatus())) == "0%"
    assert str(Progress.of(BroadcastStatus(progress="100%"))) == "100%"
    status = BroadcastStatus(total=10, delivered=3, blocked=1, failed=1, uncertain=1, pending=4)
    assert Progress.of(status) == Progress(done=6, total=10)
