"""The Bots herald-api takes messages for: those the operator verified, as their records in
the control bucket say (:mod:`herald.core.watching`). A Bot without a record (none of that
name, or its token not verified, or failing) is unknown: its messages are answered 404.
"""

from __future__ import annotations

import asyncio
import logging

from nats.js import JetStreamContext

from herald.core import subjects, watching
from herald.core.envelopes import BotRecord
from herald.core.permissions import Component
from herald.core.sealing import KeyRing, SealError

__all__ = ["KnownBots"]

logger = logging.getLogger(__name__)


class KnownBots:
    """The latest set of Bot records, once the watch caught up (:attr:`loaded`)."""

    def __init__(self, ring: KeyRing) -> None:
        self._ring = ring
        self._records: dict[str, BotRecord] = {}
        self.loaded = asyncio.Event()

    def get(self, namespace: str, name: str) -> BotRecord | None:
        return self._records.get(subjects.bot_record_key(namespace, name))

    def callback_secret(self, record: BotRecord) -> str | None:
        """The Bot's callback secret in clear; None without one. A secret that does not open
        under this process's key ring counts as none, said in the log."""
        try:
            return record.open_callback_secret(self._ring)
        except SealError as exc:
            logger.error("%s: the callback secret does not open: %s", record.key, exc)
            return None

    async def follow(self, js: JetStreamContext) -> None:
        """Keep the set current until cancelled."""
        await watching.follow(js, component=Component.API, apply=self._take)

    async def _take(self, records: dict[str, BotRecord]) -> None:
        self._records = records
        self.loaded.set()
