"""Materialising and queueing audiences in the background, one task per Broadcast, so that a
pause is never stuck behind a million-row INSERT.

Preparations use the preparing pool only and hold one connection at a time
(:func:`herald.operator.publishing.publish_work`), so any number of them at once slow each
other down but never wait on each other, nor on the reconciles. A preparation that gives up
waiting on a service keeps its :class:`~herald.operator.planning.Wait` until one succeeds;
the planner shows it, and the next reconcile starts another try.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from herald.core.broadcasts import BroadcastSpec
from herald.operator import audiences, publishing
from herald.operator.connections import Connections
from herald.operator.metrics import Metrics
from herald.operator.planning import Wait
from herald.operator.settings import OperatorSettings
from herald.operator.waiting import Service, Unavailable, waiting_for

__all__ = ["Preparations"]

logger = logging.getLogger(__name__)


@dataclass
class _Preparation:
    task: asyncio.Task[None] | None = None
    wait: Wait | None = None  # why the last try gave up, until one succeeds


class Preparations:
    """The background preparations of one operator, by Broadcast uid."""

    def __init__(
        self, connections: Connections, settings: OperatorSettings, metrics: Metrics
    ) -> None:
        self._connections = connections
        self._settings = settings
        self._metrics = metrics
        self._by_uid: dict[str, _Preparation] = {}

    def wait_of(self, uid: str) -> Wait | None:
        preparation = self._by_uid.get(uid)
        return preparation.wait if preparation is not None else None

    def start(
        self,
        *,
        uid: str,
        namespace: str,
        name: str,
        bot_id: str,
        spec: BroadcastSpec,
        source_uid: str | None = None,
    ) -> None:
        """Start a try unless one is under way. ``source_uid``: the Broadcast whose ledger
        spec.audience.fromBroadcast reads."""
        preparation = self._by_uid.setdefault(uid, _Preparation())
        if preparation.task is not None and not preparation.task.done():
            return
        preparation.task = asyncio.create_task(
            self._prepare(
                preparation,
                uid=uid,
                namespace=namespace,
                name=name,
                bot_id=bot_id,
                spec=spec,
                source_uid=source_uid,
            ),
            name=f"prepare-{uid}",
        )

    async def stop(self, uid: str) -> None:
        """Cancel the try under way, if any, and forget the Broadcast."""
        preparation = self._by_uid.pop(uid, None)
        task = preparation.task if preparation is not None else None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def stop_all(self) -> None:
        for uid in list(self._by_uid):
            await self.stop(uid)

    async def _prepare(
        self,
        preparation: _Preparation,
        *,
        uid: str,
        namespace: str,
        name: str,
        bot_id: str,
        spec: BroadcastSpec,
        source_uid: str | None,
    ) -> None:
        c = self._connections
        pool = c.preparing_pool
        try:
            started = time.monotonic()
            # Waiting for a connection is bounded like any other wait; the statement itself
            # may take minutes for millions of recipients.
            async with c.database("a connection to write the audience"):
                connection = await pool.acquire()
            try:
                async with waiting_for(
                    Service.DATABASE, c.timeouts.materialise, "writing the audience"
                ):
                    total = await audiences.materialise(
                        connection,
                        uid=uid,
                        namespace=namespace,
                        name=name,
                        bot_id=bot_id,
                        audience=spec.audience,
                        source_uid=source_uid,
                    )
            finally:
                await pool.release(connection)
            materialised = time.monotonic()
            self._metrics.materialise_time.observe(materialised - started)
            self._metrics.materialised.inc(total)
            report = await publishing.publish_work(
                pool,
                c.js,
                uid=uid,
                batch_size=self._settings.batch_size,
                window=self._settings.publish_window,
                timeouts=c.timeouts,
            )
            preparation.wait = None
            self._metrics.published_batches.inc(report.batches)
            self._metrics.published_recipients.inc(report.recipients)
            logger.info(
                "Broadcast %s/%s: %d recipients materialised in %.1fs, %d batches queued in %.1fs.",
                namespace,
                name,
                total,
                materialised - started,
                report.batches,
                time.monotonic() - materialised,
            )
        except asyncio.CancelledError:
            raise
        except Unavailable as exc:
            self._metrics.prepare_errors.inc()
            preparation.wait = exc.wait
            # The timer retries; the cursor and ON CONFLICT make the retry cheap and exact.
            logger.warning("Preparing %s/%s: %s", namespace, name, exc.wait.message)
        except Exception:
            self._metrics.prepare_errors.inc()
            logger.exception(
                "Preparing %s/%s failed; retrying on the next resync.", namespace, name
            )
