"""The event loop every Herald process runs on: uvloop, with ``time.monotonic`` as its clock.

uvloop (libuv) does the loop's own work (polling, timers, transports) in C, which is most of
what a sender spends per request besides the request itself. Two of its habits differ from
asyncio's loop, and Herald's code relies on asyncio's:

- ``loop.time()`` is libuv's clock, read once per iteration and kept in whole milliseconds:
  two readings within one iteration are equal, and a pacer spacing sends 1 ms apart cannot
  tell them apart. :class:`Loop` answers ``time.monotonic()`` instead, the clock asyncio's
  loop uses, so durations and deadlines mean what they meant.
- Its timers count whole milliseconds from that cached reading, so a timer may fire up to a
  millisecond before its deadline by ``time.monotonic()``. A loop sleeping "until t" then
  wakes, finds t not reached and sleeps again for less than a millisecond, which libuv
  rounds to nothing: a spin. :data:`TIMER_RESOLUTION` is the shortest sleep worth asking
  for; callers waiting for a deadline sleep at least that long.

:func:`run` also moves everything that exists before the loop starts (the modules, aiogram's
types, pydantic's schemas: most of a process's objects) out of the garbage collector's
reach with :func:`gc.freeze`. They live as long as the process, yet each full collection
walked them all: a sender at the paid rate paused for up to 40 ms at a time, every
request in flight held up with it.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import uvloop

__all__ = ["TIMER_RESOLUTION", "Loop", "LoopFactory", "new_loop", "run"]

T = TypeVar("T")
LoopFactory = Callable[[], asyncio.AbstractEventLoop]

# libuv's timers count milliseconds.
TIMER_RESOLUTION = 0.001


class Loop(uvloop.Loop):
    """uvloop's loop on asyncio's clock."""

    def time(self) -> float:
        return time.monotonic()


def new_loop() -> asyncio.AbstractEventLoop:
    """A fresh :class:`Loop`: the ``loop_factory`` of :class:`asyncio.Runner`."""
    loop: asyncio.AbstractEventLoop = Loop()
    return loop


def run(main: Coroutine[Any, Any, T], *, debug: bool | None = None) -> T:
    """`main` to its end on a fresh :class:`Loop`, as :func:`asyncio.run` would on its own
    loop (the same clean-up of tasks, async generators and the default executor)."""
    gc.freeze()
    with asyncio.Runner(loop_factory=new_loop, debug=debug) as runner:
        return runner.run(main)
