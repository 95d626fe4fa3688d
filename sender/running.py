"""The sender process: watch the control bucket, hold bot leases, and for each bot held run a
:class:`~herald.sender.sending.BotWorker` that pulls work, claims rows, paces and sends,
records, then acks.

A bot is needed while it has a broadcast that is not stopped, or a Bot record whose token
opens here and transactional traffic within ``transactional_window_seconds``
(:func:`~herald.sender.leases.wanted`). Which replica holds a needed bot is decided by
:mod:`~herald.sender.leases` and performed on the bucket by :mod:`~herald.sender.controls`;
this module hires a worker for each bot it holds and retires it when the lease is lost or
the bot is needed no more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

import nats.errors
from nats.aio.client import Client as NatsClient

from herald.core import natsconn, pgconn, probes, streams
from herald.core.envelopes import BotRecord, BroadcastState, ControlRecord
from herald.core.permissions import Component
from herald.core.sealing import SealError
from herald.sender import controls, leases, ledgers
from herald.sender.controls import Controls
from herald.sender.ledgers import Ledger
from herald.sender.metrics import Metrics
from herald.sender.recording import Recorder
from herald.sender.sending import BotWorker
from herald.sender.settings import Config
from herald.sender.tasks import Vitals, spawn, wait

__all__ = ["Sender"]

log = logging.getLogger(__name__)


class Sender:
    """One sender process."""

    def __init__(self, config: Config, *, metrics: Metrics | None = None) -> None:
        self.config = config
        self.metrics = metrics if metrics is not None else Metrics()
        self._records: dict[str, ControlRecord] = {}
        self._bots: dict[str, BotRecord] = {}  # by key, those whose token opens here
        self._traffic: dict[str, datetime] = {}  # bot id -> herald-api's last message
        self._workers: dict[str, BotWorker] = {}
        self._leases_due = asyncio.Event()
        self.ready = asyncio.Event()
        self.vitals = Vitals()
        self._ring = config.tokens.ring()

    async def run(self, stopping: asyncio.Event) -> bool:
        """Until ``stopping`` is set, or a vital loop fails; returns whether all was well."""
        settings = self.config.sender
        client: NatsClient = await natsconn.connect(
            self.config.nats,
            component=Component.SENDER,
            name=f"herald-sender {settings.id}",
            max_reconnect_attempts=-1,
        )
        pool = await pgconn.create_pool(self.config.database)
        try:
            js = client.jetstream()
            await streams.expect_work_stream(js)
            kv = await streams.expect_control_bucket(js)
            self._js = js
            self._nc = client
            self._controls = Controls(kv, me=settings.id, lease_seconds=settings.lease_seconds)
            self._ledger = Ledger(pool, me=settings.id, claim_ttl=settings.claim_ttl_seconds)
            self._recorder = Recorder(
                self._ledger, flush_seconds=settings.flush_seconds, metrics=self.metrics
            )
            control: set[asyncio.Task[Any]] = set()
            spawn(control, self._watch(), vital=(self.vitals, "the control watch"))
            spawn(control, self._lease(), vital=(self.vitals, "the leases"))
            recording = spawn(set(), self._recorder.run(), vital=(self.vitals, "the ledger writer"))
            probing = await probes.serve(
                settings.health_port,
                live=lambda: self.vitals.failure,
                ready={
                    "NATS": probes.nats_connected(client),
                    "Postgres": probes.postgres_answers(pool),
                },
            )
            log.info("sender %s running", settings.id)
            await _first(stopping, self.vitals.failed)
            if self.vitals.failure is not None:
                # Half a sender holds its bots' leases and sends nothing: stop cleanly (the
                # ledger keeps every claim honest) and exit non-zero to be restarted.
                log.error("sender %s stopping: %s", settings.id, self.vitals.failure)
            else:
                log.info("sender %s stopping", settings.id)
            await self._shutdown(control, recording)
            await probing.cleanup()
        finally:
            await pool.close()
            await client.drain()
        return self.vitals.failure is None

    async def _shutdown(
        self, control: set[asyncio.Task[Any]], recording: asyncio.Task[None]
    ) -> None:
        loop = asyncio.get_running_loop()
        # Leave a margin of the grace period for the final write and the lease release.
        deadline = loop.time() + max(0.5, self.config.sender.shutdown_seconds - 2.0)
        for task in control:
            task.cancel()
        await asyncio.gather(*control, return_exceptions=True)
        # The recorder keeps writing while the workers finish their in-flight sends.
        await asyncio.gather(
            *(worker.close(deadline) for worker in self._workers.values()), return_exceptions=True
        )
        recording.cancel()
        await asyncio.gather(recording, return_exceptions=True)
        with contextlib.suppress(*ledgers.ERRORS):
            await self._recorder.flush()
        for bot_id in list(self._workers):
            with contextlib.suppress(nats.errors.Error):
                await self._controls.release(bot_id)
        self._workers.clear()

    async def _watch(self) -> None:
        while True:
            try:
                async for change in self._controls.changes():
                    self._apply(change)
            except nats.errors.Error as error:
                log.warning("control watch failed, watching again: %s", error)
                await asyncio.sleep(1.0)

    def _apply(self, change: controls.Change) -> None:
        if isinstance(change, controls.Ready):
            self.ready.set()
        elif isinstance(change, controls.Seen):
            record = change.record
            if record.state is not BroadcastState.STOPPED and not self._opens(record):
                self._apply(controls.Gone(record.uid))
                return
            self._records[record.uid] = record
            if (worker := self._workers.get(record.bot_id)) is not None:
                worker.update(record)
            self._leases_due.set()
        elif isinstance(change, controls.Gone):
            gone = self._records.pop(change.uid, None)
            if gone is not None and (worker := self._workers.get(gone.bot_id)) is not None:
                worker.drop(change.uid)
            self._leases_due.set()
        elif isinstance(change, controls.Halted) and (
            worker := self._workers.get(change.halt.bot_id)
        ):
            worker.halt(change.halt.until)
        elif isinstance(change, controls.BotSeen):
            self._see_bot(change.record)
        elif isinstance(change, controls.BotGone):
            gone_bot = self._bots.pop(change.key, None)
            if gone_bot is not None:
                self._bot_changed(gone_bot.bot_id)
        elif isinstance(change, controls.Traffic):
            traffic = change.traffic
            self._traffic[traffic.bot_id] = traffic.at
            self._leases_due.set()

    def _see_bot(self, record: BotRecord) -> None:
        before = self._bots.pop(record.key, None)
        try:
            record.open_token(self._ring)
        except SealError as error:
            log.error("not serving Bot %s/%s: %s", record.namespace, record.name, error)
        else:
            self._bots[record.key] = record
        if before is not None and before.bot_id != record.bot_id:
            self._bot_changed(before.bot_id)  # the Bot has a new token, of another bot
        self._bot_changed(record.bot_id)

    def _bot_changed(self, bot_id: str) -> None:
        if (worker := self._workers.get(bot_id)) is not None:
            worker.update_bot(self._bot_record(bot_id))
        self._leases_due.set()

    def _bot_record(self, bot_id: str) -> BotRecord | None:
        """The record the bot's transactional messages are sent with. Two Bots (in two
        namespaces) may name one bot: their tokens are that bot's, either will do."""
        records = sorted(
            (record for record in self._bots.values() if record.bot_id == bot_id),
            key=lambda record: record.key,
        )
        return records[0] if records else None

    def _opens(self, record: ControlRecord) -> bool:
        """Whether the record's token opens with this sender's key ring."""
        try:
            record.open_token(self._ring)
        except SealError as error:
            log.error("not serving %s/%s: %s", record.namespace, record.name, error)
            return False
        return True

    async def _lease(self) -> None:
        settings = self.config.sender
        loop = asyncio.get_running_loop()
        while True:
            self._leases_due.clear()
            needed = leases.wanted(
                broadcasts=self._records.values(),
                bots={record.bot_id for record in self._bots.values()},
                traffic=self._traffic,
                now=datetime.now(UTC),
                window=settings.transactional_window_seconds,
            )
            for bot_id in list(self._workers):
                if bot_id not in needed:
                    await self._retire(bot_id, release=True)
            for bot_id in sorted(needed):
                started = loop.time()
                try:
                    # Bounded well inside the lease: a renewal lost in a leader election of the
                    # control bucket is retried, not waited out for nats-py's 5 s.
                    async with asyncio.timeout(settings.lease_seconds / 2):
                        held = await self._controls.hold(bot_id)
                except (nats.errors.Error, TimeoutError) as error:
                    # Keep sending until the lease we hold would have expired.
                    log.warning(
                        "renewing the lease of bot %s failed: %s", bot_id, str(error) or "no answer"
                    )
                    continue
                worker = self._workers.get(bot_id)
                if not held:
                    if worker is not None:
                        log.warning("lost the lease of bot %s", bot_id)
                        await self._retire(bot_id, release=False)
                    continue
                if worker is None:
                    try:
                        worker = await self._hire(bot_id)
                    except nats.errors.Error as error:
                        # JetStream not answering yet (a cluster electing its leaders): the
                        # worker has no broadcast and sent nothing; hire again next round.
                        log.warning("taking up bot %s failed: %s", bot_id, error)
                        await self._retire(bot_id, release=False)
                        continue
                # Valid a second less than written, for the time the write took and skew.
                worker.lease_until = started + settings.lease_seconds - 1.0
            self.metrics.bots.set(len(self._workers))
            await wait(self._leases_due, settings.lease_seconds / 5)

    async def _hire(self, bot_id: str) -> BotWorker:
        worker = BotWorker(
            bot_id=bot_id,
            ring=self._ring,
            config=self.config,
            js=self._js,
            nc=self._nc,
            ledger=self._ledger,
            recorder=self._recorder,
            controls=self._controls,
            metrics=self.metrics,
            vitals=self.vitals,
        )
        self._workers[bot_id] = worker
        log.info("holding the lease of bot %s", bot_id)
        if (halt := await self._controls.halt_of(bot_id)) is not None:
            worker.halt(halt.until)
        for other in self._records.values():
            if other.bot_id == bot_id:
                worker.update(other)
        worker.update_bot(self._bot_record(bot_id))
        return worker

    async def _retire(self, bot_id: str, *, release: bool) -> None:
        worker = self._workers.pop(bot_id)
        loop = asyncio.get_running_loop()
        await worker.close(loop.time() + self.config.sender.request_timeout_seconds)
        if release:
            await self._controls.release(bot_id)


async def _first(*events: asyncio.Event) -> None:
    """Until one of ``events`` is set."""
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for each in waits:
            each.cancel()
