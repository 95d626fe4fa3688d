"""Background tasks of the sender's adapters: started into a set that keeps them alive and
is awaited on the way out, and any failure logged rather than lost with the task.

The loops the process cannot do without (the control watch, the leases, the ledger writer,
each broadcast's feed, claims and keep-alive, each bot's scheduler) are *vital*: the first
of them to fail ends the process (:class:`Vitals`), which Kubernetes then restarts, rather
than a replica running on half-dead while holding its bots' leases."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Coroutine
from typing import Any

from herald.core import loops

__all__ = ["Vitals", "spawn", "wait"]

log = logging.getLogger(__name__)


class Vitals:
    """Whether every vital loop still runs; the first failure is kept, with the loop's name."""

    def __init__(self) -> None:
        self.failed = asyncio.Event()
        self.failure: str | None = None

    def watch(self, task: asyncio.Task[Any], name: str) -> None:
        task.add_done_callback(functools.partial(self._ended, name))

    def _ended(self, name: str, task: asyncio.Task[Any]) -> None:
        # Cancelled or returned: stopped on purpose (shutdown, a broadcast gone).
        if task.cancelled() or (error := task.exception()) is None:
            return
        if self.failure is None:
            self.failure = f"{name} failed: {error!r}"
            self.failed.set()


def spawn(
    tasks: set[asyncio.Task[Any]],
    coro: Coroutine[Any, Any, Any],
    *,
    vital: tuple[Vitals, str] | None = None,
) -> asyncio.Task[Any]:
    """Start ``coro`` into ``tasks``; ``vital``, the process's :class:`Vitals` and the loop's
    name, when the process cannot run on without it."""
    task = asyncio.create_task(coro)
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    task.add_done_callback(_log_failure)
    if vital is not None:
        vitals, name = vital
        vitals.watch(task, name)
    return task


async def wait(event: asyncio.Event, seconds: float) -> None:
    """Until `event` is set or `seconds` pass. Not asyncio.wait_for: on Python 3.11 it loses
    a cancellation that arrives as the event is set, and a cancelled loop would run on."""
    with contextlib.suppress(TimeoutError):
        # A timer shorter than the loop's resolution would fire at once: a spin, not a wait.
        async with asyncio.timeout(max(seconds, loops.TIMER_RESOLUTION)):
            await event.wait()


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("background task failed: %r", error, exc_info=error)
