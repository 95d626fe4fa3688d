"""Assembling the bot: the Dispatcher with its routers and injected dependencies, and the
process around it (Postgres pool, Kubernetes client, NATS, polling or webhook)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
from aiogram import Bot, Dispatcher, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramAPIError
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.types import BotCommand, BotCommandScopeChat, BotCommandScopeDefault
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web
from kubernetes import client
from nats.aio.client import Client as NatsClient

from herald.bot import controlling, creating, errors, listing, subscribing
from herald.bot.kubeapi import KubernetesBroadcasts
from herald.bot.live import LiveStatus
from herald.bot.metrics import CountAdminCommands, CountUpdates, Metrics
from herald.bot.middlewares import AdminOnly, BotSubscribers, SubscriberRefresh, UserTexts
from herald.bot.postgres import PostgresSubscriberBook
from herald.bot.reporting import CompletionReports
from herald.bot.settings import BotSettings, Settings
from herald.bot.stores import BroadcastStore, SubscriberBook
from herald.bot.throttling import RetryAfter
from herald.bot.translations import Translations
from herald.core import natsconn, probes
from herald.core.permissions import Component
from herald.kube import connecting

__all__ = ["BotApp", "assemble", "build_dispatcher", "run", "webhook_application"]

logger = logging.getLogger(__name__)

_SUBSCRIBER_COMMANDS = (("start", "Subscribe to broadcasts"),)
_ADMIN_COMMANDS = (
    ("broadcasts", "List broadcasts with progress"),
    ("status", "Details of a broadcast: /status NAME"),
    ("pause", "Pause a broadcast: /pause NAME"),
    ("resume", "Resume a broadcast: /resume NAME"),
    ("cancel", "Delete a broadcast: /cancel NAME"),
    ("help", "What the bot can do"),
)


def build_dispatcher(
    *,
    settings: BotSettings,
    broadcasts: BroadcastStore,
    subscribers: SubscriberBook,
    live: LiveStatus,
    translations: Translations,
    metrics: Metrics | None = None,
) -> Dispatcher:
    """The Dispatcher with every router, its middlewares and its dependencies.

    Handlers receive ``broadcasts``, ``live`` and ``bot_settings`` from the dispatcher's
    workflow data, ``texts`` from :class:`UserTexts` and ``subscribers``, those of the bot
    the update came to, from :class:`BotSubscribers`; nothing is global.
    """
    # In-memory dialog state: one replica serves a bot (polling allows no other), and a
    # dialog lost to a restart costs an admin one forward.
    dispatcher = Dispatcher(storage=MemoryStorage())
    metrics = metrics if metrics is not None else Metrics()
    dispatcher["broadcasts"] = broadcasts
    dispatcher["live"] = live
    dispatcher["bot_settings"] = settings
    dispatcher["metrics"] = metrics
    dispatcher.update.outer_middleware(CountUpdates(metrics))
    dispatcher.update.outer_middleware(UserTexts(translations))
    dispatcher.update.outer_middleware(BotSubscribers(subscribers))
    dispatcher.message.outer_middleware(SubscriberRefresh())

    dispatcher.include_router(subscribing.router())
    # Everything below `admin` passes one check: its inner middlewares apply to the
    # handlers of every child router.
    admin = Router(name="admin")
    guard = AdminOnly(settings.admins, metrics=metrics)
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
    bot: Bot
    dispatcher: Dispatcher
    live: LiveStatus
    reports: CompletionReports
    metrics: Metrics
    pool: asyncpg.Pool
    nats: NatsClient

    def failure(self) -> str | None:
        """Why the bot cannot do its work any more, for /livez."""
        return self.live.failure or self.reports.failure


def new_bot(settings: Settings) -> Bot:
    session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram.api_url))
    session.middleware(RetryAfter())
    return Bot(settings.bot.token.get_secret_value(), session=session)


async def set_commands(bot: Bot, settings: BotSettings) -> None:
    """The command menu: /start for everyone, the admin commands in admins' chats only."""
    await bot.set_my_commands(
        [BotCommand(command=c, description=d) for c, d in _SUBSCRIBER_COMMANDS],
        scope=BotCommandScopeDefault(),
    )
    for admin in sorted(settings.admins):
        try:
            await bot.set_my_commands(
                [BotCommand(command=c, description=d) for c, d in _ADMIN_COMMANDS],
                scope=BotCommandScopeChat(chat_id=admin),
            )
        except TelegramAPIError as exc:
            # An admin who never opened the bot has no chat yet; the commands still work.
            logger.warning("No command menu for admin %s: %s", admin, type(exc).__name__)


@contextlib.asynccontextmanager
async def assemble(
    settings: Settings,
    *,
    kubernetes: client.ApiClient | None = None,
    metrics: Metrics | None = None,
) -> AsyncIterator[BotApp]:
    """Every connection the bot needs, open, with live updates and reports running."""
    translations = Translations()
    metrics = metrics if metrics is not None else Metrics()
    api = kubernetes or client.ApiClient(connecting.load().configuration)
    pool = await asyncpg.create_pool(
        settings.database.url.get_secret_value(),
        min_size=settings.database.min_connections,
        max_size=settings.database.max_connections,
    )
    bot = new_bot(settings)
    connection = await natsconn.connect(settings.nats, component=Component.BOT, name="herald-bot")
    try:
        broadcasts = KubernetesBroadcasts(api)
        subscribers = PostgresSubscriberBook(pool)
        live = LiveStatus(
            bot,
            broadcasts,
            default_namespace=settings.bot.namespace,
            interval=settings.bot.live_interval,
            capacity=settings.bot.live_messages,
        )
        dispatcher = build_dispatcher(
            settings=settings.bot,
            broadcasts=broadcasts,
            subscribers=subscribers,
            live=live,
            translations=translations,
            metrics=metrics,
        )
        reports = CompletionReports(
            connection.jetstream(),
            bot,
            admins=settings.bot.admins,
            namespaces=settings.bot.listed_namespaces,
            default_namespace=settings.bot.namespace,
            durable=settings.bot.durable,
            # Reports go out through this bot, in the language its subscribers told it.
            subscribers=subscribers.of(bot.id),
            translations=translations,
            metrics=metrics,
        )
        await reports.start()
        live.start()
        try:
            yield BotApp(settings, bot, dispatcher, live, reports, metrics, pool, connection)
        finally:
            await live.stop()
            await reports.stop()
    finally:
        await connection.close()
        await bot.session.close()
        await pool.close()
        if kubernetes is None:
            api.close()  # type: ignore[no-untyped-call]


def webhook_application(app: BotApp) -> web.Application:
    """The aiohttp application Telegram posts updates to (webhook mode)."""
    application = web.Application()
    secret = app.settings.bot.webhook_secret
    SimpleRequestHandler(
        app.dispatcher,
        app.bot,
        # Answer Telegram at once and handle the update after: a slow Kubernetes call must
        # not make Telegram time out and redeliver.
        handle_in_background=True,
        secret_token=secret.get_secret_value() if secret else None,
    ).register(application, path=app.settings.bot.webhook_path)
    return application


async def _serve_webhook(app: BotApp) -> None:
    settings = app.settings.bot
    assert settings.webhook_url is not None
    runner = web.AppRunner(webhook_application(app))
    await runner.setup()
    site = web.TCPSite(runner, settings.webhook_host, settings.webhook_port)
    await site.start()
    secret = settings.webhook_secret
    await app.bot.set_webhook(
        settings.webhook_url,
        secret_token=secret.get_secret_value() if secret else None,
        allowed_updates=app.dispatcher.resolve_used_update_types(),
    )
    logger.info("Webhook mode: listening on port %d", settings.webhook_port)
    try:
        await app.dispatcher.emit_startup(bot=app.bot)
        await _forever()
    finally:
        await app.dispatcher.emit_shutdown(bot=app.bot)
        await runner.cleanup()


async def _poll(app: BotApp) -> None:
    """Long polling until cancelled, then stopped through aiogram's own signal: cancelling
    start_polling itself would leave its polling task running on (asyncio.wait does not
    cancel what it waits for)."""
    polling = asyncio.ensure_future(
        app.dispatcher.start_polling(app.bot, handle_signals=False, close_bot_session=False)
    )
    try:
        await asyncio.shield(polling)
    except asyncio.CancelledError:
        if not polling.done():
            with contextlib.suppress(RuntimeError):  # not started yet: nothing to stop
                await app.dispatcher.stop_polling()
            polling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await polling
        raise


async def _forever() -> None:
    await asyncio.Event().wait()


async def run(settings: Settings, *, kubernetes: client.ApiClient | None = None) -> None:
    """Run the bot until cancelled: webhook mode if a webhook URL is set, else polling."""
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
            await set_commands(app.bot, settings.bot)
        except TelegramAPIError as exc:
            logger.warning("Could not set the command menu: %s", type(exc).__name__)
        try:
            if settings.bot.webhook_url:
                await _serve_webhook(app)
            else:
                # Polling and a webhook exclude each other on Telegram's side.
                await app.bot.delete_webhook(drop_pending_updates=False)
                await _poll(app)
        finally:
            await probing.cleanup()
