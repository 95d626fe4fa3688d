"""The event loop every component runs on."""

from __future__ import annotations

import asyncio
import gc
import time

from herald.core import loops


def test_run_keeps_what_exists_before_the_loop_out_of_the_collector() -> None:
    gc.unfreeze()  # the modules imported so far are what run() should freeze

    async def main() -> int:
        return gc.get_freeze_count()

    try:
        assert loops.run(main()) > 0
    finally:
        gc.unfreeze()


def test_the_clock_is_monotonic_time_not_the_cached_milliseconds() -> None:
    async def main() -> tuple[float, float, float]:
        loop = asyncio.get_running_loop()
        before = time.monotonic()
        first = loop.time()
        second = loop.time()
        return before, first, second

    before, first, second = loops.run(main())
    assert before <= first < second  # two readings in one iteration still differ
