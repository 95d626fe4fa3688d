"""Entry point of `herald-bot`: the admin and subscriber bot process."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys

from pydantic import ValidationError

from herald.bot.app import NothingToServe, run
from herald.bot.settings import Settings
from herald.core import logs, loops
from herald.core.sealing import SealError

__all__ = ["main"]


async def _main(settings: Settings) -> None:
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
    try:
        settings = Settings.from_environment()
        loops.run(_main(settings))
    except (ValidationError, NothingToServe, SealError) as error:
        # A webhook without its secret, no bot to serve, a token key that cannot be read:
        # said once, plainly, rather than as a traceback.
        sys.exit(f"herald-bot: invalid configuration:\n{logs.redact(str(error))}")


if __name__ == "__main__":
    main()
