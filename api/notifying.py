"""Outcome callbacks: the final state of a message POSTed to its ``callbackUrl``, signed
with the Bot's callback secret (:mod:`herald.api.signatures`).

The sender marks a row's callback pending when it records a final state; any replica takes
due callbacks (``FOR UPDATE SKIP LOCKED``, each held for the length of one attempt), so they
are shared, and one that a dying replica held is due again soon after. A 2xx answer ends
it (callback_state done); anything else (another status, a time-out, no connection, the Bot
gone or without its secret) is tried again with backoff, up to ``callback_attempts`` times,
then callback_state is failed. Callbacks are delivered at least once: a receiver keys on the
message id.
"""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
import asyncpg

from herald.api import postgres, signatures
from herald.api.bots import KnownBots
from herald.api.metrics import Metrics
from herald.api.settings import ApiSettings

__all__ = ["Callbacks"]

logger = logging.getLogger(__name__)

# Callbacks taken per round; the next round starts as soon as these are answered.
_ROUND = 32
# A round with nothing due waits this long, or until an outcome is announced.
_IDLE_SECONDS = 1.0


class Callbacks:
    def __init__(
        self,
        pool: asyncpg.Pool,
        bots: KnownBots,
        *,
        settings: ApiSettings,
        metrics: Metrics,
    ) -> None:
        self._pool = pool
        self._bots = bots
        self._settings = settings
        self._metrics = metrics
        self._due = asyncio.Event()

    def wake(self) -> None:
        """An outcome was announced: look for due callbacks now."""
        self._due.set()

    async def run(self) -> None:
        """Make due callbacks until cancelled."""
        timeout = aiohttp.ClientTimeout(total=self._settings.callback_timeout_seconds)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                self._due.clear()
                taken = await postgres.claim_callbacks(
                    self._pool,
                    limit=_ROUND,
                    hold_seconds=self._settings.callback_timeout_seconds + 5.0,
                )
                if taken:
                    await asyncio.gather(*(self._attempt(session, due) for due in taken))
                    continue
                try:
                    async with asyncio.timeout(_IDLE_SECONDS):
                        await self._due.wait()
                except TimeoutError:
                    pass

    async def _attempt(self, session: aiohttp.ClientSession, due: postgres.CallbackDue) -> None:
        row = due.row
        failure = await self._post(session, row)
        attempts = due.attempts + 1
        if failure is None:
            state, retry_in, result = "done", None, "done"
        elif attempts >= self._settings.callback_attempts:
            state, retry_in, result = "failed", None, "failed"
            logger.warning(
                "callback of message %s failed for good after %d attempts: %s",
                row.id,
                attempts,
                failure,
            )
        else:
            state, result = "pending", "retry"
            retry_in = signatures.backoff(attempts, first=self._settings.callback_backoff_seconds)
            logger.info(
                "callback of message %s failed (attempt %d, again in %.0f s): %s",
                row.id,
                attempts,
                retry_in,
                failure,
            )
        await postgres.record_callback(self._pool, row.id, state=state, retry_in=retry_in)
        self._metrics.callbacks.labels(result).inc()

    async def _post(self, session: aiohttp.ClientSession, row: postgres.MessageRow) -> str | None:
        """Why the attempt failed; None when the receiver took it."""
        if row.callback_url is None:
            return "the message has no callbackUrl"
        record = self._bots.get(row.namespace, row.bot)
        if record is None:
            return f"the Bot {row.namespace}/{row.bot} is not known (deleted, or not verified)"
        secret = self._bots.callback_secret(record)
        if secret is None:
            return f"the Bot {row.namespace}/{row.bot} has no callback secret to sign with"
        body = row.view().model_dump_json().encode()
        headers = {
            "Content-Type": "application/json",
            signatures.HEADER: signatures.sign(secret, body, at=int(time.time())),
        }
        try:
            async with session.post(
                row.callback_url, data=body, headers=headers, allow_redirects=False
            ) as answer:
                if 200 <= answer.status < 300:
                    return None
                return f"the receiver answered {answer.status}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            return f"no answer from the receiver: {exc!r}"
