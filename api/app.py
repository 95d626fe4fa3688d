"""Assembling herald-api: the FastAPI application, and the process around it (the Postgres
pool, NATS, the Kubernetes client, the Bots watch and the loops) opened in its lifespan.

The loops, each for the life of the process:

- the Bots watch (:class:`~herald.api.bots.KnownBots`);
- the re-publish of pending rows whose queueing may have failed
  (:meth:`~herald.api.publishing.Publisher.republish`), every ``republish_seconds``;
- the open messages per bot, every few seconds: the gauge, and the traffic record of each bot
  with open messages, so a sender holds it while its queue drains;
- the outcome callbacks (:class:`~herald.api.notifying.Callbacks`);
- the latency of the messages whose outcome this replica heard, every second;
- the expiry of finished messages older than ``idempotency_hours``, in batches.

A loop survives what a restart would not cure (Postgres or NATS gone a while): it says so
and goes on. Any other failure ends it, and /livez then fails, so the kubelet restarts the
process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from fastapi import FastAPI, Response
from kubernetes import client
from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from herald.api import errors, postgres, routes
from herald.api.bots import KnownBots
from herald.api.metrics import CountRequests, Metrics
from herald.api.notifying import Callbacks
from herald.api.publishing import Publisher
from herald.api.service import Service
from herald.api.settings import Settings
from herald.api.waiting import Outcomes
from herald.core import migrating, natsconn, pgconn, probes, streams
from herald.core.envelopes import MessageOutcome
from herald.core.permissions import Component
from herald.kube import connecting
from herald.kube.broadcasts import AsyncBroadcasts, Broadcasts
from herald.kube.reviews import CachedReviews, Reviews

__all__ = ["Process", "assemble", "create_app"]

logger = logging.getLogger(__name__)

_OPEN_SECONDS = 5.0
_LATENCY_SECONDS = 1.0
_EXPIRY_SECONDS = 60.0
_EXPIRY_BATCH = 1000
# What a loop outlives: the services it talks to being away a while.
_PASSING = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, NatsError, TimeoutError)

_DESCRIPTION = """\
Transactional messages: one message to one chat, sent by the Bot's sender ahead of its
broadcasts, within the bot's limit. Authenticate with a Kubernetes service account token;
a Role granting `create` (send) or `get` (read) on `messages` of API group `herald.dev`,
with the Bot's name in `resourceNames`, authorises it. A Broadcast's ledger (who got it,
who did not) is read with `get` on `broadcasts/deliveries`, the Broadcast's name in
`resourceNames`. See docs/transactional.md.
"""


@dataclass
class Process:
    """The running parts, for the routes, the probes and the tests."""

    service: Service
    reviews: CachedReviews
    broadcasts: AsyncBroadcasts  # to find a Broadcast's uid, the key of its ledger
    nats: NatsClient
    pool: asyncpg.Pool
    tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    def failure(self) -> str | None:
        """Why the process cannot do its work any more, for /livez."""
        for name, task in self.tasks.items():
            failure = probes.failure_of(task, name)
            if failure is not None:
                return failure
        return None

    def checks(self) -> dict[str, probes.Check]:
        async def bots() -> str | None:
            loaded = self.service.bots.loaded.is_set()
            return None if loaded else "the Bot records are not read yet"

        return {
            "NATS": probes.nats_connected(self.nats),
            "Postgres": probes.postgres_answers(self.pool),
            "Bots": bots,
        }


async def _every(seconds: float, name: str, step: Callable[[], Awaitable[Any]]) -> None:
    while True:
        try:
            await step()
        except _PASSING as exc:
            logger.warning("%s failed, again in %g s: %r", name, seconds, exc)
        await asyncio.sleep(seconds)


async def _until_cancelled(name: str, run: Callable[[], Awaitable[None]]) -> None:
    while True:
        try:
            await run()
        except _PASSING as exc:
            logger.warning("%s failed, again in 1 s: %r", name, exc)
            await asyncio.sleep(1.0)


class _Latencies:
    """The ids whose outcome this replica acts on, read in one query a second."""

    def __init__(self, pool: asyncpg.Pool, metrics: Metrics) -> None:
        self._pool = pool
        self._metrics = metrics
        self._ids: list[uuid.UUID] = []

    def add(self, outcome: MessageOutcome) -> None:
        with contextlib.suppress(ValueError):
            self._ids.append(uuid.UUID(outcome.id))

    async def observe(self) -> None:
        ids, self._ids = self._ids, []
        if ids:
            for seconds in await postgres.latencies(self._pool, ids):
                self._metrics.latency.observe(seconds)


def _loops(
    settings: Settings,
    *,
    pool: asyncpg.Pool,
    watch: Awaitable[None],
    publisher: Publisher,
    callbacks: Callbacks,
    latencies: _Latencies,
    metrics: Metrics,
) -> dict[str, Awaitable[None]]:
    """The process's loops by name (the name /livez gives when one fails)."""
    a = settings.api

    async def republish() -> None:
        await publisher.republish(pool)

    async def show_open() -> None:
        counts = await postgres.open_counts(pool)
        metrics.show_open(counts)
        for count in counts:
            await publisher.note_traffic(
                namespace=count.namespace, name=count.bot, bot_id=count.bot_id
            )

    async def expire() -> None:
        while True:
            deleted = await postgres.expire(
                pool, older_than_hours=a.idempotency_hours, batch=_EXPIRY_BATCH
            )
            metrics.expired.inc(deleted)
            if deleted < _EXPIRY_BATCH:
                return

    loops: dict[str, Awaitable[None]] = {
        "the Bot records watch": watch,
        "the re-publish of pending messages": _every(
            a.republish_seconds, "the re-publish of pending messages", republish
        ),
        "the count of open messages": _every(
            _OPEN_SECONDS, "the count of open messages", show_open
        ),
        "the outcome callbacks": _until_cancelled("the outcome callbacks", callbacks.run),
        "the latencies": _every(_LATENCY_SECONDS, "the latencies", latencies.observe),
        "the expiry of idempotency keys": _every(
            _EXPIRY_SECONDS, "the expiry of idempotency keys", expire
        ),
    }
    return loops


@contextlib.asynccontextmanager
async def assemble(
    settings: Settings, *, metrics: Metrics, kubernetes: client.ApiClient | None = None
) -> AsyncIterator[Process]:
    """Every connection the process needs, open, and its loops running."""
    ring = settings.tokens.ring()
    api = kubernetes or client.ApiClient(connecting.load().configuration)
    pool = await pgconn.create_pool(settings.database)
    nats: NatsClient | None = None
    tasks: dict[str, asyncio.Task[None]] = {}
    try:
        # The operator migrates; herald-api only refuses a schema without its table.
        connection = await asyncpg.connect(settings.database.url.get_secret_value())
        try:
            await migrating.ensure_schema(connection, migrate=False)
        finally:
            await connection.close()
        nats = await natsconn.connect(settings.nats, component=Component.API, name="herald-api")
        js = nats.jetstream()
        await streams.expect_messages_stream(js)
        control = await streams.expect_control_bucket(js)
        a = settings.api
        bots = KnownBots(ring)
        publisher = Publisher(
            js,
            control,
            traffic_seconds=a.traffic_seconds,
            republish_seconds=a.republish_seconds,
            metrics=metrics,
        )
        callbacks = Callbacks(pool, bots, settings=a, metrics=metrics)
        latencies = _Latencies(pool, metrics)

        def once(outcome: MessageOutcome) -> None:
            latencies.add(outcome)
            callbacks.wake()

        outcomes = Outcomes(once=once)
        await outcomes.start(nats)
        service = Service(pool, bots, publisher, outcomes, settings=a)
        reviews = CachedReviews(
            Reviews(api, timeout=a.kubernetes_timeout_seconds), ttl=a.auth_cache_seconds
        )

        loops = _loops(
            settings,
            pool=pool,
            watch=bots.follow(js),
            publisher=publisher,
            callbacks=callbacks,
            latencies=latencies,
            metrics=metrics,
        )
        for name, loop in loops.items():
            tasks[name] = asyncio.ensure_future(loop)
        broadcasts = AsyncBroadcasts(
            Broadcasts(api, field_manager="herald-api", timeout=a.kubernetes_timeout_seconds)
        )
        yield Process(service, reviews, broadcasts, nats, pool, tasks)
    finally:
        for task in tasks.values():
            task.cancel()
        for task in tasks.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if nats is not None:
            await nats.close()
        await pool.close()
        if kubernetes is None:
            api.close()  # type: ignore[no-untyped-call]


def create_app(
    settings: Settings,
    *,
    metrics: Metrics | None = None,
    kubernetes: client.ApiClient | None = None,
) -> FastAPI:
    """The application; its lifespan opens and closes the process's connections."""
    metrics = metrics if metrics is not None else Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with assemble(settings, metrics=metrics, kubernetes=kubernetes) as process:
            app.state.process = process
            app.state.service = process.service
            app.state.reviews = process.reviews
            app.state.broadcasts = process.broadcasts
            yield

    app = FastAPI(
        title="Herald",
        summary="Transactional Telegram messages and the broadcast ledger",
        description=_DESCRIPTION,
        version="v1",
        lifespan=lifespan,
    )
    app.include_router(routes.router)
    app.include_router(routes.ledger_router)
    errors.install(app)

    @app.get("/metrics", include_in_schema=False)
    async def metrics_page() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/livez", include_in_schema=False)
    async def livez() -> Response:
        failure = app.state.process.failure()
        if failure is not None:
            return Response(f"not live: {failure}\n", status_code=500, media_type="text/plain")
        return Response("ok\n", media_type="text/plain")

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        problems = await probes.problems(app.state.process.checks())
        if problems:
            text = "not ready: " + "; ".join(problems) + "\n"
            return Response(text, status_code=503, media_type="text/plain")
        return Response("ok\n", media_type="text/plain")

    # The last added is the outermost: every answer is counted, a 413 of LimitBody too.
    app.add_middleware(errors.LimitBody, limit=settings.api.max_body_bytes)
    app.add_middleware(CountRequests, metrics=metrics)
    return app
