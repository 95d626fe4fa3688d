"""The Bots the operator verified, as the control bucket holds them: a watch of the
``bot.<namespace>.<name>`` keys, handed on as the whole set of records each time it changes.

The whole set, not each change: the first set is every record there is, once the watch has
caught up, so a watch started again (NATS went away) replaces what was known, and a Bot
deleted meanwhile is not served on. The operator writes a record only when it changed and
purges it when the Bot is gone or its token fails; both are seen here within a moment.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from herald.core import subjects
from herald.core.envelopes import BotRecord, DecodeError, decode

__all__ = ["records"]

logger = logging.getLogger(__name__)


async def records(kv: KeyValue) -> AsyncIterator[dict[str, BotRecord]]:
    """Every Bot record by key once the watch caught up, then again after each change."""
    watcher = await kv.watch(subjects.BOT_RECORDS)
    known: dict[str, BotRecord] = {}
    caught_up = False
    try:
        async for entry in watcher:
            if entry is None:  # every record there was has been seen
                caught_up = True
                yield dict(known)
                continue
            key = entry.key
            if entry.operation in (KV_DEL, KV_PURGE) or not entry.value:
                known.pop(key, None)
            else:
                try:
                    record = decode(BotRecord, entry.value)
                except DecodeError as exc:
                    # Not served rather than served on stale data: a newer operator's record
                    # this version cannot read says the Bot changed.
                    logger.warning("Bot record %s cannot be read: %s", key, exc)
                    known.pop(key, None)
                else:
                    if record.key == key:
                        known[key] = record
                    else:
                        logger.warning("Bot record under %s is %s's", key, record.key)
                        known.pop(key, None)
            if caught_up:
                yield dict(known)
    finally:
        await watcher.stop()  # type: ignore[no-untyped-call]
