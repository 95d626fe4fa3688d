"""Liveness and readiness over HTTP for the kubelet, served by the long-running components.

``/livez`` answers 500 once the process cannot do its work any more (a vital loop failed), so
the kubelet restarts it; ``/readyz`` answers 503 while a service it depends on does not
answer, which takes the pod out of Services and holds a rollout, without a restart. Each
answer's body says why, for ``kubectl describe`` and a human with curl.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import asyncpg
from aiohttp import web
from nats.aio.client import Client as NatsClient

__all__ = ["Check", "failure_of", "nats_connected", "postgres_answers", "problems", "serve"]

# Why not ready, or None; called on each probe.
Check = Callable[[], Awaitable[str | None]]

# Below the kubelet's default probe time-out of 1 s, so a slow check is a failed probe
# with a reason rather than a probe the kubelet gave up on.
_CHECK_SECONDS = 0.8


def failure_of(task: asyncio.Task[Any] | None, name: str) -> str | None:
    """Why a loop meant to run for the life of the process stopped, or None while it runs
    (or before it starts, or once the process stops it)."""
    if task is None or not task.done() or task.cancelled():
        return None
    error = task.exception()
    return f"{name} failed: {error!r}" if error is not None else f"{name} ended"


def nats_connected(client: NatsClient) -> Check:
    async def check() -> str | None:
        return None if client.is_connected else "not connected (reconnecting)"

    return check


def postgres_answers(pool: asyncpg.Pool) -> Check:
    async def check() -> str | None:
        try:
            async with asyncio.timeout(_CHECK_SECONDS):
                await pool.fetchval("SELECT 1")
        except TimeoutError:
            return f"no answer within {_CHECK_SECONDS:g} s"
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as error:
            return f"{type(error).__name__}: {error}"
        return None

    return check


async def problems(ready: Mapping[str, Check]) -> list[str]:
    """What keeps the process from being ready, each as "<name>: <why>"; empty when ready.
    (herald-api serves the probes on its own port, through this.)"""
    names = list(ready)
    answers = await asyncio.gather(*(ready[name]() for name in names))
    return [f"{name}: {why}" for name, why in zip(names, answers, strict=True) if why]


async def serve(
    port: int, *, live: Callable[[], str | None], ready: Mapping[str, Check]
) -> web.AppRunner:
    """Serve both probes on ``port`` (0: not at all); the caller cleans the runner up."""

    async def livez(_: web.Request) -> web.Response:
        failure = live()
        if failure is not None:
            return web.Response(status=500, text=f"not live: {failure}\n")
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        found = await problems(ready)
        if found:
            return web.Response(status=503, text="not ready: " + "; ".join(found) + "\n")
        return web.Response(text="ok\n")

    app = web.Application()
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    if port:
        await web.TCPSite(runner, "0.0.0.0", port).start()  # noqa: S104 - the kubelet's probes
    return runner
