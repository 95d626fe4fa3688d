"""Group commits of the marks before each send, against a ledger double that records each
statement (the SQL itself runs against Postgres in the sender's pipeline tests)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import asyncpg
import pytest

from herald.sender.ledgers import Ledger
from herald.sender.marking import Marker


class CommitLog:
    """Stands in for the ledger: each call is one commit, held until released."""

    def __init__(self, *, not_ours: frozenset[tuple[str, int]] = frozenset()) -> None:
        self.commits: list[list[tuple[str, int]]] = []
        self.release = asyncio.Event()
        self.fail: Exception | None = None
        self._not_ours = not_ours

    async def mark_sending(self, rows: Sequence[tuple[str, int]]) -> set[tuple[str, int]]:
        self.commits.append(list(rows))
        await self.release.wait()
        if self.fail is not None:
            raise self.fail
        return {row for row in rows if row not in self._not_ours}


async def turns() -> None:
    """Let every task that can run, run."""
    for _ in range(5):
        await asyncio.sleep(0)


def marker_on(log: CommitLog, clock: list[float], done: list[int]) -> Marker:
    ledger: Ledger = log  # type: ignore[assignment]
    return Marker(ledger, clock=lambda: clock[0], on_done=lambda: done.append(1))


async def test_marks_asked_during_a_commit_share_the_next_one() -> None:
    log, clock, done = CommitLog(not_ours=frozenset({("b", 3)})), [10.0], list[int]()
    marker = marker_on(log, clock, done)
    assert marker.oldest is None
    first = asyncio.ensure_future(marker.mark("a", 1))
    await turns()
    assert log.commits == [[("a", 1)]]
    clock[0] = 10.5
    later = [asyncio.ensure_future(marker.mark(uid, chat)) for uid, chat in [("a", 2), ("b", 3)]]
    await turns()
    # Still the first commit; the oldest mark is the one on its way.
    assert len(log.commits) == 1
    assert marker.oldest == 10.0
    log.release.set()
    assert await first is True
    assert [await each for each in later] == [True, False]  # ("b", 3) is another sender's
    assert log.commits == [[("a", 1)], [("a", 2), ("b", 3)]]
    assert marker.oldest is None
    assert len(done) == 2


async def test_a_failed_commit_fails_each_of_its_marks_and_the_next_ones_go_on() -> None:
    log, clock, done = CommitLog(), [0.0], list[int]()
    marker = marker_on(log, clock, done)
    log.fail = asyncpg.PostgresConnectionError("gone")
    marks = [asyncio.ensure_future(marker.mark("a", chat)) for chat in (1, 2)]
    await turns()
    log.release.set()
    for mark in marks:
        with pytest.raises(asyncpg.PostgresConnectionError):
            await mark
    log.fail = None
    assert await marker.mark("a", 3) is True
    assert log.commits == [[("a", 1), ("a", 2)], [("a", 3)]]
