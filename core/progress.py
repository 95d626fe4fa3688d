"""How far a Broadcast is: recipients in a terminal state out of its audience.

The one answer every component shows: the operator writes it as ``status.progress``, the
admin bot and ``kubectl broadcast`` show it beside their progress bars, and a bar fills with
the same rounding, so no view says 100% or shows a full bar before every recipient is done.
"""

from __future__ import annotations

from dataclasses import dataclass

from herald.core.statuses import BroadcastStatus

__all__ = ["Progress"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Progress:
    """``done`` of ``total`` recipients are terminal (delivered, blocked, failed, uncertain).

    ``counted`` is False until the operator has written the audience into the ledger: before
    that a total of 0 means "not known yet", not "nobody", and nothing is shown as done.
    """

    done: int = 0
    total: int = 0
    counted: bool = True

    @classmethod
    def of(cls, status: BroadcastStatus | None) -> Progress:
        """Progress as a written status reports it."""
        if status is None:
            return cls(counted=False)
        done = status.delivered + status.blocked + status.failed + status.uncertain
        # The operator writes `progress` from the moment the audience is counted; a total
        # above 0 says the same of a status written without it.
        counted = status.progress is not None or status.total > 0
        return cls(done=done, total=status.total, counted=counted)

    @property
    def complete(self) -> bool:
        """Every recipient is terminal. An empty audience that was counted is complete: there
        is nobody left to reach, and the operator reports it Complete at once; showing it as
        0% would read as "not started" for a Broadcast that is over."""
        return self.counted and self.done >= self.total

    @property
    def percent(self) -> int:
        """Whole percent, rounded down: 100 only when :attr:`complete`, 99 a moment before."""
        if self.complete:
            return 100
        if not self.counted:
            return 0
        return max(0, self.done) * 100 // self.total

    def cells(self, width: int) -> int:
        """Filled cells of a ``width``-cell bar, rounded down like :attr:`percent`."""
        if width < 1:
            raise ValueError("a progress bar is at least one cell wide")
        if self.complete:
            return width
        if not self.counted:
            return 0
        return max(0, self.done) * width // self.total

    def __str__(self) -> str:
        """``42%``, the form of ``status.progress``."""
        return f"{self.percent}%"
