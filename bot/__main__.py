"""Entry point of `herald-bot`: the admin and subscriber bot."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from herald.bot.app import run
from herald.bot.settings import Settings

__all__ = ["main"]


async def _main() -> None:
    settings = Settings.from_environment()
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    # SIGTERM is how Kubernetes stops a pod: leave through the same cleanup as Ctrl-C.
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await run(settings)


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # aiogram logs every update at INFO with its content; the bot logs what it did instead.
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)
    asyncio.run(_main())


if __name__ == "__main__":
    main()
