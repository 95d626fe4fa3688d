"""Entry point of ``herald-api``: configuration from the environment, the HTTP server, and a
graceful stop on SIGTERM.

On SIGTERM (or Ctrl-C) the server stops taking connections, every ``?wait=`` answers at once
with what it has (202 while pending: the client reads the message later), requests in
progress get ``shutdown_seconds`` to finish, then the lifespan closes the connections.
"""

from __future__ import annotations

import asyncio
import sys
from types import FrameType

import uvicorn
from fastapi import FastAPI
from pydantic import ValidationError

from herald.api.app import create_app
from herald.api.service import Service
from herald.api.settings import Settings
from herald.core import logs
from herald.core.sealing import SealError

__all__ = ["main"]


class _Server(uvicorn.Server):
    """uvicorn's server, telling the application when a stop was asked for."""

    def __init__(self, config: uvicorn.Config, *, app: FastAPI) -> None:
        super().__init__(config)
        self._app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        service: Service | None = getattr(self._app.state, "service", None)
        if service is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # not serving (yet): nothing waits
        # A signal handler interrupts the loop anywhere: wake the waiters from the loop.
        loop.call_soon_threadsafe(service.stop_waiting)


def main() -> None:
    logs.configure()
    try:
        settings = Settings()
        settings.tokens.ring()  # refused here, plainly, rather than as a traceback later
    except (ValidationError, SealError) as error:
        sys.exit(f"herald-api: invalid configuration:\n{logs.redact(str(error))}")
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.api.host,
        port=settings.api.port,
        # Herald's own logging (herald.core.logs), and no access log: it would carry the
        # paths of every message, a volume Prometheus' request counts tell better.
        log_config=None,
        access_log=False,
        lifespan="on",
        loop="herald.core.loops:new_loop",
        timeout_graceful_shutdown=int(settings.api.shutdown_seconds),
        # nginx's 75 s, well past the 15 s aiohttp keeps an idle connection for reuse:
        # uvicorn's 5 s closed connections a client was just reusing, and its POST then
        # failed with a reset it cannot tell from a lost answer.
        timeout_keep_alive=75,
    )
    server = _Server(config, app=app)
    server.run()
    if not server.started:
        # The lifespan failed, as uvicorn logged: no database, NATS or API server.
        sys.exit(1)


if __name__ == "__main__":
    main()
