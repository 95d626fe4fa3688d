"""Entry point of `herald-bot`: the admin and subscriber bot."""

from __future__ import annotations

import asyncio
import contextlib
import signal

from herald.bot.app import run
from herald.bot.settings import Settings
from herald.core import logs

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
    # aiogram logs every update at INFO with its content (herald.core.logs quiets it); the
    # bot logs what it did instead.
    logs.configure()
    asyncio.run(_main())


if __name__ == "__main__":
    main()
