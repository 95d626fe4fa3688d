"""Entry point of ``herald-sender``: configuration from the environment, SIGTERM handling."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys

from pydantic import ValidationError

from herald.core import logs, loops
from herald.core.sealing import SealError
from herald.sender.metrics import Metrics
from herald.sender.running import Sender
from herald.sender.settings import Config

__all__ = ["main"]

log = logging.getLogger("herald.sender")


async def _run(config: Config) -> bool:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    metrics = Metrics()
    metrics.serve(config.sender.metrics_port)
    return await Sender(config, metrics=metrics).run(stopping)


def main() -> None:
    try:
        # aiogram logs each failed request with its parameters, which include message bodies.
        logs.configure(floors={"aiogram": logging.WARNING})
        config = Config()
        config.tokens.ring()  # refused here, plainly, rather than as a traceback later
    except (ValidationError, SealError) as error:
        sys.exit(f"herald-sender: invalid configuration:\n{logs.redact(str(error))}")
    # What start-up made (aiogram's and pydantic's classes and schemas, most of the heap)
    # lives as long as the process: out of the collector's reach, a full collection does
    # not walk it again for every few thousand messages' garbage.
    gc.freeze()
    if not loops.run(_run(config)):
        sys.exit(1)  # a vital loop failed (logged); Kubernetes restarts the pod


if __name__ == "__main__":
    main()
