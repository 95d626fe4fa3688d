"""The last step before a broadcast's request leaves: its ledger row is marked ``sending``.

Without the mark, a sender killed with rows claimed leaves them all ``uncertain``, although
most never left (a claim covers about 0.2 s of sending). With it, after a crash a row still
``claimed`` is known never to have reached the wire and is sent again, and only the rows
marked — the requests on the wire, and those between their commit and their first byte —
can end ``uncertain``.

A mark per request would be a commit per message, so marks are group commits: every send
that asks while one commit is on its way goes in the next, one statement for all of them.
At 30 msg/s that is one row per commit and a few milliseconds before each send; at the paid
limit a commit carries the few rows whose slots fell during the previous one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from herald.sender import tasks
from herald.sender.ledgers import Ledger

__all__ = ["Marker"]

log = logging.getLogger(__name__)

_Key = tuple[str, int]  # (broadcast uid, chat id)


class Marker:
    """Marks rows ``sending`` in group commits; `on_done` is called after each commit (the
    scheduler waits for marks that take long, see :attr:`oldest`)."""

    def __init__(
        self, ledger: Ledger, *, clock: Callable[[], float], on_done: Callable[[], None]
    ) -> None:
        self._ledger = ledger
        self._clock = clock
        self._on_done = on_done
        self._waiting: dict[_Key, asyncio.Future[bool]] = {}
        self._asked_at: float | None = None  # when the oldest waiting or committing mark asked
        self._committing: float | None = None  # when the oldest mark of the commit asked
        self._writer: asyncio.Task[Any] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def oldest(self) -> float | None:
        """When the oldest mark not yet committed was asked for (loop time), or None."""
        return self._committing if self._committing is not None else self._asked_at

    async def mark(self, uid: str, chat_id: int) -> bool:
        """True once the row is marked and may be sent; False when it is no longer this
        sender's. Raises the ledger's errors (see :data:`~herald.sender.ledgers.ERRORS`)."""
        key = (uid, chat_id)
        future = self._waiting.get(key)
        if future is None:
            future = self._waiting[key] = asyncio.get_running_loop().create_future()
            if self._asked_at is None:
                self._asked_at = self._clock()
        if self._writer is None:
            self._writer = tasks.spawn(self._tasks, self._write())
        return await asyncio.shield(future)

    async def _write(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, {}
                self._committing, self._asked_at = self._asked_at or self._clock(), None
                try:
                    marked = await self._ledger.mark_sending(list(batch))
                except asyncio.CancelledError:
                    for future in batch.values():
                        future.cancel()
                    raise
                except Exception as error:
                    for future in batch.values():
                        if not future.done():
                            future.set_exception(error)
                            future.exception()  # its send may be gone: never "not retrieved"
                    continue
                finally:
                    self._committing = None
                    self._on_done()
                for key, future in batch.items():
                    if not future.done():
                        future.set_result(key in marked)
        finally:
            self._writer = None
