"""Assembling the bot process: the Dispatcher with its routers and injected dependencies, and
the process around it (Postgres pool, Kubernetes client, NATS, the bots it serves)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
from aiogram import Dispatcher, F, Router
from aiogram.fsm.storage.base import BaseStorage
from kubernetes import client
from nats.aio.client import Client as NatsClient

from herald.bot import (
    clicking,
    controlling,
    creating,
    errors,
    listing,
    rosters,
    subscribing,
)
from herald.bot.dialogs import DialogStorage
from herald.bot.kubeapi import KubernetesBroadcasts
from herald.bot.metrics import CountAdminCommands, CountUpdates, Metrics
from herald.bot.middlewares import AdminOnly, BotSubscribers, SubscriberRefresh, UserTexts
from herald.bot.postgres import PostgresSubscriberBook
from herald.bot.reporting import CompletionReports
from herald.bot.serving import Fleet
from herald.bot.settings import Settings
from herald.bot.stores import SubscriberBook
from herald.bot.translations import Translations
from herald.core import natsconn, pgconn, probes
from herald.core.permissions import Component
from herald.kube import connecting

__all__ = ["BotApp", "NothingToServe", "assemble", "build_dispatcher", "run"]

logger = logging.getLogger(__name__)


class NothingToServe(ValueError):
    """Neither a token key ring (for the Bots) nor HERALD_BOT_TOKEN: no bot could be served."""


def build_dispatcher(
    *,
    subscribers: SubscriberBook,
    translations: Translations,
    storage: BaseStorage,
    metrics: Metrics | None = None,
) -> Dispatcher:
    """The Dispatcher with every router, its middlewares and its dependencies.

    Handlers receive ``metrics`` from the dispatcher's workflow data, ``subscribers`` (those
    of the bot the update came to) from :class:`BotSubscribers`, ``served_bot``,
    ``broadcasts`` and ``live`` (the bot's own) from whoever feeds the update
    (:class:`herald.bot.serving.Fleet`), and ``texts`` from :class:`UserTexts`; nothing is
    global. ``storage`` keeps the creation dialogs (:class:`herald.bot.dialogs.DialogStorage`).
    """
    dispatcher = Dispatcher(storage=storage)
    metrics = metrics if metrics is not None else Metrics()
    dispatcher["metrics"] = metrics
    dispatcher.update.outer_middleware(CountUpdates(metrics))
    dispatcher.update.outer_middleware(UserTexts(translations))
    dispatcher.update.outer_middleware(BotSubscribers(subscribers))
    dispatcher.message.outer_middleware(SubscriberRefresh())

    dispatcher.include_router(subscribing.router())
    # Before `admin`: anyone who received a broadcast may press its buttons.
    dispatcher.include_router(clicking.router())
    # Everything below `admin` passes one check: its inner middlewares apply to the
    # handlers of every child router.
    admin = Router(name="admin")
    # Private chats only: in a group the answer would show the bot's Broadcasts to everyone
    # there, and a refusal would tell them who is not an admin. A command there gets no
    # answer at all.
    admin.message.filter(F.chat.type == "private")
    admin.callback_query.filter(F.message.chat.type == "private")
    guard = AdminOnly(metrics=metrics)
    counter = CountAdminCommands(metrics)
    # Registered after the guard, so inside it: it counts only the admitted actions.
    for observer in (admin.message, admin.callback_query):
        observer.middleware(guard)
        observer.middleware(counter)
    admin.include_routers(
        listing.router(), controlling.router(), creating.router(), errors.router()
    )
    dispatcher.include_router(admin)
    return dispatcher


@dataclass(frozen=True)
class BotApp:
    settings: Settings
    dispatcher: Dispatcher
    fleet: Fleet
    reports: CompletionReports
    metrics: Metrics
    pool: asyncpg.Pool
    nats: NatsClient

    def failure(self) -> str | None:
        """Why the process cannot do its work any more, for /livez."""
        return self.fleet.failure or self.reports.failure


@contextlib.asynccontextmanager
async def assemble(
    settings: Settings,
    *,
    kubernetes: client.ApiClient | None = None,
    metrics: Metrics | None = None,
) -> AsyncIterator[BotApp]:
    """Every connection the process needs, open, with its bots served and reports running."""
    ring = settings.ring()
    legacy = rosters.legacy_wanted(settings.bot)
    if ring is None and legacy is None:
        raise NothingToServe(
            "nothing to serve: set HERALD_TOKEN_KEYS (or HERALD_TOKEN_KEYS_FILE), the token "
            "key ring of the operator, to serve the cluster's Bots; HERALD_BOT_TOKEN, the "
            "older single-bot form, is deprecated"
        )
    if legacy is not None:
        logger.warning(
            "HERALD_BOT_TOKEN is deprecated: create a Bot resource for this bot instead "
            "(its admins in spec.admins, its webhook in spec.updates)"
        )
    translations = Translations()
    metrics = metrics if metrics is not None else Metrics()
    api = kubernetes or client.ApiClient(connecting.load().configuration)
    pool = await pgconn.create_pool(settings.database)
    connection = await natsconn.connect(settings.nats, component=Component.BOT, name="herald-bot")
    try:
        broadcasts = KubernetesBroadcasts(api)
        subscribers = PostgresSubscriberBook(pool)
        dispatcher = build_dispatcher(
            subscribers=subscribers,
            translations=translations,
            metrics=metrics,
            storage=DialogStorage(capacity=settings.bot.dialogs, ttl=settings.bot.dialog_ttl),
        )
        fleet = Fleet(
            dispatcher=dispatcher,
            settings=settings.bot,
            api_url=settings.telegram.api_url,
            broadcasts=broadcasts,
            ring=ring,
            legacy=legacy,
            metrics=metrics,
        )
        reports = CompletionReports(
            connection.jetstream(),
            fleet.reporter,
            durable=settings.bot.durable,
            subscribers=subscribers,
            translations=translations,
            metrics=metrics,
        )
        try:
            await fleet.start(connection.jetstream())
            await reports.start()
            yield BotApp(settings, dispatcher, fleet, reports, metrics, pool, connection)
        finally:
            await reports.stop()
            await fleet.close()
    finally:
        await connection.close()
        await pool.close()
        if kubernetes is None:
            api.close()  # type: ignore[no-untyped-call]


async def run(settings: Settings, *, kubernetes: client.ApiClient | None = None) -> None:
    """Serve every bot until cancelled."""
    async with assemble(settings, kubernetes=kubernetes) as app:
        app.metrics.serve(settings.bot.metrics_port)
        probing = await probes.serve(
            settings.bot.health_port,
            live=app.failure,
            ready={
                "NATS": probes.nats_connected(app.nats),
                "Postgres": probes.postgres_answers(app.pool),
            },
        )
        try:
            await asyncio.Event().wait()
        finally:
            await probing.cleanup()
