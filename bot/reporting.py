"""Completion and failure reports: the operator's records on ``herald.events.completed``
become a message to every admin of the bot whose Broadcast it was, in the admin's language.

Which bot that is, the process decides (``route``): the Bot the Broadcast names, or the
older form's bot for its namespaces; a record that no bot served here reports is acked and
left to whoever serves its bot.

A durable pull consumer keeps the bot's place in the stream, so reports published while the
bot was down arrive when it starts again (the stream keeps them for a week). Bad data is
terminated, never retried; a Telegram outage is retried a bounded number of times.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from herald.bot.metrics import Metrics
from herald.bot.stores import SubscriberBook
from herald.bot.translations import Translations
from herald.bot.views import report_text
from herald.core import probes, subjects
from herald.core.envelopes import CompletionRecord, DecodeError, decode
from herald.core.streams import expect_events_stream

__all__ = ["MAX_DELIVER", "CompletionReports", "Reporter", "Route"]

logger = logging.getLogger(__name__)

# A report retried this often while Telegram is unreachable is dropped: by then the admins
# can read the outcome from `kubectl get broadcasts` anyway.
MAX_DELIVER = 5
_RETRY_DELAY = 10.0
_ACK_WAIT = 60.0
_FETCH_TIMEOUT = 5.0
_TRANSIENT = (TelegramNetworkError, TelegramServerError, TelegramRetryAfter)


@dataclass(frozen=True, kw_only=True)
class Reporter:
    """The bot that tells of a finished Broadcast, and whom it tells."""

    bot: Bot
    bot_id: int  # getMe's, as the subscriber table keeps its subscribers under
    admins: tuple[int, ...]
    default_namespace: str
    default_language: str | None = None


# The reporter of a record; None: no bot served here reports it.
Route = Callable[[CompletionRecord], Awaitable[Reporter | None]]


class CompletionReports:
    def __init__(
        self,
        js: JetStreamContext,
        route: Route,
        *,
        durable: str,
        subscribers: SubscriberBook,
        translations: Translations,
        metrics: Metrics | None = None,
    ) -> None:
        self._js = js
        self._metrics = metrics if metrics is not None else Metrics()
        self._route = route
        self._durable = durable
        self._subscribers = subscribers
        self._translations = translations
        self._task: asyncio.Task[None] | None = None
        self._subscription: JetStreamContext.PullSubscription | None = None

    async def start(self) -> None:
        await expect_events_stream(self._js)
        self._subscription = await self._js.pull_subscribe(
            subjects.COMPLETIONS_SUBJECT,
            durable=self._durable,
            stream=subjects.EVENTS_STREAM,
            config=ConsumerConfig(
                durable_name=self._durable,
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                filter_subject=subjects.COMPLETIONS_SUBJECT,
                max_deliver=MAX_DELIVER,
                ack_wait=_ACK_WAIT,
            ),
        )
        self._task = asyncio.create_task(self._run(), name="herald-bot-completion-reports")

    @property
    def failure(self) -> str | None:
        return probes.failure_of(self._task, "completion reports")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._subscription is not None:
            # Unsubscribing the pull subscription keeps the durable consumer on the server.
            await self._subscription.unsubscribe()
            self._subscription = None

    async def _run(self) -> None:
        assert self._subscription is not None
        while True:
            try:
                messages = await self._subscription.fetch(batch=10, timeout=_FETCH_TIMEOUT)
            except (TimeoutError, NatsTimeoutError):
                continue
            for msg in messages:
                try:
                    await self.handle(msg)
                except Exception:
                    logger.exception("Completion report failed; JetStream redelivers it")

    async def handle(self, msg: Msg) -> None:
        try:
            record = decode(CompletionRecord, msg.data)
        except DecodeError as exc:
            logger.warning("Terminated a completion record that cannot be read: %s", exc)
            await msg.term()
            return
        reporter = await self._route(record)
        if reporter is None:
            # Another bot's Broadcast: its own bot reports it.
            await msg.ack()
            return
        retry = False
        # In the language each admin told the bot that reports, as its subscriber.
        subscribers = self._subscribers.of(reporter.bot_id)
        for admin in reporter.admins:
            texts = self._translations.for_language(
                await subscribers.language_of(admin), default=reporter.default_language
            )
            text = report_text(record, texts=texts, default_namespace=reporter.default_namespace)
            try:
                await reporter.bot.send_message(admin, text)
            except _TRANSIENT:
                self._metrics.reports.labels("retried").inc()
                retry = True
            except TelegramAPIError as exc:
                self._metrics.reports.labels("failed").inc()
                # The admin never started the bot, or blocked it: nothing to retry for them.
                logger.warning("Could not report to admin %s: %s", admin, type(exc).__name__)
            else:
                self._metrics.reports.labels("sent").inc()
        if retry:
            # Admins already told may hear it twice; an unreported failure would be worse.
            await msg.nak(delay=_RETRY_DELAY)
        else:
            await msg.ack()
            logger.info(
                "Reported %s of %s/%s to %d admins",
                record.outcome,
                record.namespace,
                record.name,
                len(reporter.admins),
            )
