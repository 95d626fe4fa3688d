"""Outcomes on their way to the ledger: written together every few milliseconds, and what
waits on them (acks, requeues) done only once the write has committed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from herald.sender import ledgers
from herald.sender.ledgers import Ledger, Row
from herald.sender.metrics import Metrics

__all__ = ["Recorder"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Pending:
    uid: str
    row: Row
    then: Callable[[], None] | None


class Recorder:
    """Outcomes wait here a few milliseconds and are written together; callbacks run after
    the write commits, so nothing is acked before the ledger says it is done."""

    def __init__(
        self, ledger: Ledger, *, flush_seconds: float, metrics: Metrics | None = None
    ) -> None:
        self._ledger = ledger
        self._flush_seconds = flush_seconds
        self._metrics = metrics
        self._pending: list[_Pending] = []
        self._writing = 0
        self._lock = asyncio.Lock()

    @property
    def backlog(self) -> int:
        """Outcomes not yet committed: after a crash these rows are claimed but unrecorded."""
        return len(self._pending) + self._writing

    def add(self, uid: str, row: Row, then: Callable[[], None] | None = None) -> None:
        self._pending.append(_Pending(uid, row, then))

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._flush_seconds)
            try:
                await self.flush()
            except ledgers.ERRORS as error:
                if self._metrics is not None:
                    self._metrics.ledger_errors.labels("record").inc()
                # Kept for the next round: the rows stay claimed, nothing is acked meanwhile.
                log.warning("ledger write failed, retrying: %s", error)
                await asyncio.sleep(0.5)

    async def flush(self) -> None:
        async with self._lock:
            if not self._pending:
                return
            taken, self._pending = self._pending, []
            writes: dict[str, list[Row]] = {}
            for pending in taken:
                writes.setdefault(pending.uid, []).append(pending.row)
            self._writing = len(taken)
            try:
                await self._ledger.record(writes)
            except BaseException:
                self._pending[:0] = taken
                raise
            finally:
                self._writing = 0
        for pending in taken:
            if pending.then is not None:
                pending.then()
