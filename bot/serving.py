"""Serving the bots: one Dispatcher for all of them, each bot started, restarted and stopped
as its record comes, changes and goes.

(Over 400 lines because :class:`Fleet` is one state machine: the served bots, their polling
loops, the webhook routes and the shared bound on updates in flight change together on each
record; the decisions themselves live in the pure :mod:`herald.bot.rosters`.)

:class:`Fleet` takes the Bot records (from :mod:`herald.core.watching`) and the older form's
bot, decides with :mod:`herald.bot.rosters` which to serve, and converges on that: a new bot
is started, one with another token or update mode is started again, one whose admins changed
is changed in place, one gone is stopped after the updates it took are handled. Each served
bot has its own aiogram Bot (its session and token), its own live status messages and its own
view of Broadcasts (:class:`~herald.bot.scopes.BotBroadcasts`); its updates come by
:func:`~herald.bot.polling.poll` or through :class:`~herald.bot.webhooks.Webhooks`.

Every update, of whichever bot, is fed to the one Dispatcher with the bot's own handler data
(``served_bot``, ``broadcasts``, ``live``), so a handler acts for the bot the update came to,
and at most ``max_concurrent_updates`` run at once over all bots.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Iterable, Mapping
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramAPIError
from aiogram.methods import TelegramMethod
from aiogram.types import BotCommand, BotCommandScopeChat, BotCommandScopeDefault, Update
from nats.js import JetStreamContext

from herald.bot import polling, rosters
from herald.bot.callbacks import BroadcastRef
from herald.bot.live import LiveStatus
from herald.bot.metrics import Metrics
from herald.bot.reporting import Reporter
from herald.bot.rosters import ServedBot, Skipped, Wanted
from herald.bot.scopes import BotBroadcasts
from herald.bot.settings import BotSettings
from herald.bot.stores import BroadcastNotFound, BroadcastStore
from herald.bot.throttling import RetryAfter
from herald.bot.webhooks import Route, Webhooks
from herald.core import probes, streams, watching
from herald.core.envelopes import BotRecord, CompletionRecord
from herald.core.permissions import Component
from herald.core.sealing import KeyRing
from herald.telegram import sessions

__all__ = ["Fleet", "Gate", "new_bot", "set_commands"]

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
# A bot being stopped finishes the updates it took for this long; then they are cancelled.
_DRAIN_SECONDS = 10.0


def new_bot(token: str, *, api_url: str) -> Bot:
    session = sessions.new_session(api_url)
    session.middleware(RetryAfter())
    return Bot(token, session=session)


async def set_commands(bot: Bot, admins: Iterable[int], *, label: str) -> None:
    """The command menu: /start for everyone, the admin commands in admins' chats only."""
    try:
        await bot.set_my_commands(
            [BotCommand(command=c, description=d) for c, d in _SUBSCRIBER_COMMANDS],
            scope=BotCommandScopeDefault(),
        )
    except TelegramAPIError as exc:
        logger.warning("%s: could not set the command menu: %s", label, type(exc).__name__)
        return
    for admin in sorted(admins):
        try:
            await bot.set_my_commands(
                [BotCommand(command=c, description=d) for c, d in _ADMIN_COMMANDS],
                scope=BotCommandScopeChat(chat_id=admin),
            )
        except TelegramAPIError as exc:
            # An admin who never opened the bot has no chat yet; the commands still work.
            logger.warning("%s: no command menu for admin %s: %s", label, admin, type(exc).__name__)


class Gate:
    """At most ``limit`` updates in flight, over every bot: :meth:`admit` waits for room,
    then runs the update in the background, so whoever brings updates (a poll loop, a
    webhook call) takes the next one only once there is room for it."""

    def __init__(self, limit: int) -> None:
        self._room = asyncio.Semaphore(limit)
        self.in_flight = 0

    async def admit(
        self, work: Coroutine[Any, Any, None], *, into: set[asyncio.Task[None]]
    ) -> asyncio.Task[None]:
        try:
            await self._room.acquire()
        except BaseException:
            work.close()  # never started: no "never awaited" warning
            raise
        self.in_flight += 1
        task = asyncio.create_task(work)
        into.add(task)
        task.add_done_callback(into.discard)
        task.add_done_callback(self._release)
        return task

    def _release(self, _: asyncio.Task[None]) -> None:
        self.in_flight -= 1
        self._room.release()


class _Served:
    """One bot being served: its Bot, its live status, its view of Broadcasts, the loop that
    brings its updates (polling, or setting its webhook) and the updates in flight."""

    def __init__(self, wanted: Wanted, *, bot: Bot, live: LiveStatus, broadcasts: BotBroadcasts):
        self.wanted = wanted
        self.bot = bot
        self.live = live
        self.broadcasts = broadcasts
        self.loop: asyncio.Task[None] | None = None
        self.updates: set[asyncio.Task[None]] = set()

    @property
    def served(self) -> ServedBot:
        return self.wanted.served

    def data(self) -> dict[str, Any]:
        """What the bot's handlers receive besides the dispatcher's own workflow data."""
        return {"served_bot": self.served, "broadcasts": self.broadcasts, "live": self.live}


class Fleet:
    def __init__(
        self,
        *,
        dispatcher: Dispatcher,
        settings: BotSettings,
        api_url: str,
        broadcasts: BroadcastStore,
        ring: KeyRing | None,
        legacy: Wanted | None,
        metrics: Metrics,
    ) -> None:
        self._dispatcher = dispatcher
        self._settings = settings
        self._api_url = api_url
        self._broadcasts = broadcasts
        self._ring = ring
        self._legacy = legacy
        self._metrics = metrics
        self.webhooks = Webhooks(
            host=settings.webhook_host, port=settings.webhook_port, metrics=metrics
        )
        self._gate = Gate(settings.max_concurrent_updates)
        self._running: dict[str, _Served] = {}
        self._records: dict[str, BotRecord] = {}
        self._notes: dict[str, str] = {}  # what was last logged about a bot not served
        self._offsets: dict[int, int] = {}  # bot id -> next update id, across restarts
        self._watch: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        # Set once the records that existed at start were read: reports wait for it, so a
        # report for a Bot is not dropped for want of its bot in the first second.
        self.loaded = asyncio.Event()

    # --- the process's view --------------------------------------------------------------

    @property
    def served(self) -> Mapping[str, ServedBot]:
        return {key: running.served for key, running in self._running.items()}

    def bot_of(self, key: str) -> Bot | None:
        running = self._running.get(key)
        return running.bot if running else None

    def live_of(self, key: str) -> LiveStatus | None:
        running = self._running.get(key)
        return running.live if running else None

    @property
    def not_served(self) -> Mapping[str, str]:
        """The records (and the older form's bot) left out, by key, with the reason."""
        return dict(self._notes)

    @property
    def failure(self) -> str | None:
        """Why the bots cannot be served any more, for /livez."""
        failure = probes.failure_of(self._watch, "the Bot records watch")
        for running in self._running.values():
            loop = running.loop
            # A webhook bot's loop ends once the webhook is set: only an error is a failure.
            if loop is not None and loop.done() and not loop.cancelled() and loop.exception():
                failure = failure or probes.failure_of(loop, f"serving {running.served.label}")
            failure = failure or running.live.failure
        return failure

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self, js: JetStreamContext) -> None:
        """Serve the older form's bot at once, and the Bots as their records come."""
        await self._converge()
        if self._ring is None:
            logger.warning(
                "No token key ring (HERALD_TOKEN_KEYS): no Bot can be served, only the bot of "
                "HERALD_BOT_TOKEN"
            )
            self.loaded.set()
            return
        # Created by the operator; the bot's NATS user may only look it up.
        await streams.expect_control_bucket(js)
        self._watch = asyncio.create_task(self._follow(js), name="herald-bot-records")

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None
        async with self._lock:
            for key in list(self._running):
                await self._stop(key)
        await self.webhooks.stop()
        await self._dispatcher.storage.close()

    async def _follow(self, js: JetStreamContext) -> None:
        await watching.follow(js, component=Component.BOT, apply=self._take)

    async def _take(self, records: dict[str, BotRecord]) -> None:
        self._records = records
        await self._converge()
        self.loaded.set()

    # --- converging ------------------------------------------------------------------------

    def _wanted(self) -> tuple[list[Wanted], dict[str, Skipped]]:
        wanted = [self._legacy] if self._legacy is not None else []
        skipped: dict[str, Skipped] = {}
        if self._ring is None:  # no records are read without one (start)
            return wanted, skipped
        for key, record in sorted(self._records.items()):
            got = rosters.wanted_of(record, self._ring)
            if isinstance(got, Skipped):
                skipped[key] = got
            else:
                wanted.append(got)
        return wanted, skipped

    def _note(self, skipped: Mapping[str, Skipped]) -> None:
        """Log why a bot is not served when that is news, not on every change of any record."""
        for key, skip in skipped.items():
            if self._notes.get(key) != skip.reason:
                (logger.error if skip.problem else logger.info)(
                    "%s: not served: %s", key, skip.reason
                )
        self._notes = {key: skip.reason for key, skip in skipped.items()}

    async def _converge(self) -> None:
        async with self._lock:
            wanted, skipped = self._wanted()
            roster = rosters.plan(wanted)
            conflicts = {k: Skipped(key=k, reason=why) for k, why in roster.conflicts.items()}
            self._note({**skipped, **conflicts})
            # Stop first, so a bot id or a webhook path moving to another key is free.
            for key, running in list(self._running.items()):
                want = roster.serve.get(key)
                if want is None or rosters.needs_restart(running.wanted, want):
                    await self._stop(key)
            for key, want in roster.serve.items():
                current = self._running.get(key)
                if current is None:
                    try:
                        await self._start(want)
                    except Exception:
                        # One bot that cannot start leaves the others served; its next
                        # record tries again.
                        logger.exception("%s: not served: it did not start", want.served.label)
                elif current.wanted != want:
                    self._change(current, want)
            for mode in ("polling", "webhook"):
                count = sum(r.wanted.mode.value == mode for r in self._running.values())
                self._metrics.bots.labels(mode).set(count)

    async def _start(self, want: Wanted) -> None:
        served = want.served
        bot = new_bot(want.token.get_secret_value(), api_url=self._api_url)
        scoped = BotBroadcasts(self._broadcasts, served)
        live = LiveStatus(
            bot,
            scoped,
            default_namespace=served.namespace,
            interval=self._settings.live_interval,
            capacity=self._settings.live_messages,
        )
        running = _Served(want, bot=bot, live=live, broadcasts=scoped)
        if want.webhook is not None:
            try:
                await self.webhooks.start()  # the port taken, say
                self.webhooks.add(
                    want.webhook.path,
                    Route(
                        bot=bot,
                        secret=want.webhook.secret,
                        admit=lambda update: self._admit(running, update),
                        label=served.label,
                    ),
                )
            except BaseException:
                await bot.session.close()
                raise
        live.start()
        running.loop = asyncio.create_task(
            self._updates(running), name=f"herald-bot-updates {served.label}"
        )
        self._running[served.key] = running
        logger.info(
            "%s: serving @%s (bot id %d) by %s, for %d admins",
            served.label,
            served.username or "?",
            served.bot_id,
            want.mode.value,
            len(served.admins),
        )

    def _change(self, running: _Served, want: Wanted) -> None:
        before = running.served
        running.wanted = want
        if want.served.admins != before.admins:
            logger.info("%s: now %d admins", want.served.label, len(want.served.admins))
            task = asyncio.create_task(
                set_commands(running.bot, want.served.admins, label=want.served.label)
            )
            running.updates.add(task)
            task.add_done_callback(running.updates.discard)

    async def _stop(self, key: str) -> None:
        running = self._running[key]
        try:
            webhook = running.wanted.webhook
            if webhook is not None:
                self.webhooks.remove(webhook.path)
            if running.loop is not None:
                running.loop.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running.loop
            if running.updates:
                # The updates it took are answered before its session closes.
                _, late = await asyncio.wait(running.updates, timeout=_DRAIN_SECONDS)
                for task in late:
                    task.cancel()
                await asyncio.gather(*late, return_exceptions=True)
            await running.live.stop()
            await running.bot.session.close()
        finally:
            # Listed as served until its tasks have ended, so that "no longer served" is
            # true once it shows: nothing of the bot still runs.
            del self._running[key]
        logger.info("%s: no longer served", running.served.label)

    # --- updates ---------------------------------------------------------------------------

    async def _updates(self, running: _Served) -> None:
        want = running.wanted
        await set_commands(running.bot, want.served.admins, label=want.served.label)
        allowed = self._dispatcher.resolve_used_update_types()
        if want.webhook is None:
            await polling.poll(
                running.bot,
                lambda update: self._admit(running, update),
                offsets=self._offsets,
                allowed_updates=allowed,
                label=want.served.label,
            )
            return
        await self._set_webhook(running, allowed)

    async def _set_webhook(self, running: _Served, allowed: list[str]) -> None:
        webhook = running.wanted.webhook
        assert webhook is not None
        label = running.served.label
        delay = 1.0
        while True:
            try:
                await running.bot.set_webhook(
                    webhook.url,
                    secret_token=webhook.secret.get_secret_value(),
                    allowed_updates=allowed,
                )
            except TelegramAPIError as exc:
                logger.warning(
                    "%s: could not set the webhook (%s), trying again in %.0f s",
                    label,
                    type(exc).__name__,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)
                continue
            logger.info("%s: taking updates on the webhook path %s", label, webhook.path)
            return

    async def _admit(self, running: _Served, update: Update) -> None:
        """Run ``update`` once fewer than the limit are in flight; returns once it runs."""
        await self._gate.admit(self._handle(running, update), into=running.updates)

    async def _handle(self, running: _Served, update: Update) -> None:
        try:
            result = await self._dispatcher.feed_update(running.bot, update, **running.data())
            if isinstance(result, TelegramMethod):
                await self._dispatcher.silent_call_request(running.bot, result)
        except Exception:
            logger.exception("%s: update %d failed", running.served.label, update.update_id)

    # --- completion reports ----------------------------------------------------------------

    async def reporter(self, record: CompletionRecord) -> Reporter | None:
        """Who reports a finished Broadcast: the bot it names, as served here now."""
        await self.loaded.wait()
        served = list(self.served.values())
        bot_ref = None
        if rosters.reports_need_bot_ref(served, namespace=record.namespace):
            try:
                broadcast = await self._broadcasts.get(
                    BroadcastRef(namespace=record.namespace, name=record.name)
                )
            except BroadcastNotFound:
                pass  # deleted since it finished: the older form's bot may still report it
            else:
                bot_ref = broadcast.spec.bot_ref.name
        chosen = rosters.reporter_of(served, namespace=record.namespace, bot_ref=bot_ref)
        running = self._running.get(chosen.key) if chosen is not None else None
        if chosen is None or running is None:
            return None
        return Reporter(
            bot=running.bot,
            bot_id=chosen.bot_id,
            admins=tuple(sorted(chosen.admins)),
            default_namespace=chosen.namespace,
            default_language=chosen.default_language,
        )
