"""The control bucket as the sender uses it: broadcasts' control records, bot halts, the
operator's bot records and herald-api's traffic records come in through one watch; leases,
halts and faults go out with compare-and-set or plain puts."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import nats.errors
import nats.js.errors
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from herald.core import subjects
from herald.core.envelopes import (
    BotHalt,
    BotRecord,
    BotSpend,
    BotTraffic,
    ControlRecord,
    DecodeError,
    FaultRecord,
    Lease,
    decode,
    encode,
)
from herald.sender import leases

__all__ = [
    "BotGone",
    "BotSeen",
    "Controls",
    "Gone",
    "Halted",
    "Ready",
    "Seen",
    "Traffic",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Seen:
    record: ControlRecord


@dataclass(frozen=True, slots=True)
class Gone:
    uid: str


@dataclass(frozen=True, slots=True)
class Halted:
    halt: BotHalt


@dataclass(frozen=True, slots=True)
class BotSeen:
    """A verified Bot, whose transactional messages this sender may send."""

    record: BotRecord


@dataclass(frozen=True, slots=True)
class BotGone:
    """The Bot's record at `key` was withdrawn (deleted, or its token failed)."""

    key: str


@dataclass(frozen=True, slots=True)
class Traffic:
    """herald-api took a transactional message for the bot at ``traffic.at``."""

    traffic: BotTraffic


@dataclass(frozen=True, slots=True)
class Ready:
    """Every record that existed when the watch started has been seen."""


Change = Seen | Gone | Halted | BotSeen | BotGone | Traffic | Ready

_BROADCAST = subjects.control_key("")
_HALT = subjects.bot_halt_key("")
_BOT = subjects.BOT_RECORDS.removesuffix(">")
_TRAFFIC = subjects.bot_traffic_key("")


class Controls:
    def __init__(self, kv: KeyValue, *, me: str, lease_seconds: float) -> None:
        self._kv = kv
        self._me = me
        self._lease_seconds = lease_seconds
        self._revisions: dict[str, int] = {}

    async def changes(self) -> AsyncIterator[Change]:
        """Control records, halts, bot records and traffic, current ones first, then every
        change."""
        # One watch over the bucket (nats-py watches one pattern); lease, spend and fault
        # keys are skipped below.
        watcher = await self._kv.watchall()
        try:
            async for entry in watcher:
                if entry is None:
                    yield Ready()
                    continue
                key = entry.key
                deleted = entry.operation in (KV_DEL, KV_PURGE)
                if key.startswith(_BROADCAST):
                    uid = key.removeprefix(_BROADCAST)
                    if deleted or entry.value is None:
                        yield Gone(uid)
                        continue
                    try:
                        yield Seen(decode(ControlRecord, entry.value))
                    except DecodeError as error:
                        # Without a record the broadcast's work is unknown: send nothing.
                        log.warning("unusable control record for %s: %s", uid, error)
                        yield Gone(uid)
                elif key.startswith(_HALT) and not deleted and entry.value:
                    try:
                        yield Halted(decode(BotHalt, entry.value))
                    except DecodeError as error:
                        log.warning("unusable bot halt at %s: %s", key, error)
                elif key.startswith(_BOT):
                    if deleted or entry.value is None:
                        yield BotGone(key)
                        continue
                    try:
                        yield BotSeen(decode(BotRecord, entry.value))
                    except DecodeError as error:
                        # A record of a newer operator: its messages wait for a newer sender.
                        log.warning("unusable bot record at %s: %s", key, error)
                        yield BotGone(key)
                elif key.startswith(_TRAFFIC) and not deleted and entry.value:
                    try:
                        yield Traffic(decode(BotTraffic, entry.value))
                    except DecodeError as error:
                        log.warning("unusable traffic record at %s: %s", key, error)
        finally:
            await watcher.stop()  # type: ignore[no-untyped-call]

    async def hold(self, bot_id: str) -> bool:
        """Take or renew the lease of `bot_id`; whether this sender holds it now."""
        key = subjects.bot_lease_key(bot_id)
        current: Lease | None = None
        revision = 0
        try:
            entry = await self._kv.get(key)
            revision = entry.revision or 0
            if entry.value:
                current = decode(Lease, entry.value)
        except nats.js.errors.KeyNotFoundError:
            pass
        except DecodeError:
            # Garbage at the key: treat it as an expired lease and take it over.
            current = Lease(bot_id=bot_id, holder="", expires=datetime.min.replace(tzinfo=UTC))
        step = leases.plan(
            current,
            bot_id=bot_id,
            me=self._me,
            now=datetime.now(UTC),
            seconds=self._lease_seconds,
        )
        if step.lease is None:
            self._revisions.pop(bot_id, None)
            return False
        try:
            if step.move is leases.Move.CREATE:
                self._revisions[bot_id] = await self._kv.create(key, encode(step.lease))
            else:
                self._revisions[bot_id] = await self._kv.update(
                    key, encode(step.lease), last=revision
                )
        except nats.js.errors.KeyWrongLastSequenceError:
            # Another replica wrote first; it holds the bot.
            self._revisions.pop(bot_id, None)
            return False
        return True

    async def release(self, bot_id: str) -> None:
        """Give the lease up, unless someone else already holds it."""
        revision = self._revisions.pop(bot_id, None)
        if revision is None:
            return
        try:
            await self._kv.delete(subjects.bot_lease_key(bot_id), last=revision)
        except (nats.js.errors.KeyWrongLastSequenceError, nats.errors.Error) as error:
            log.info("lease of bot %s not released (%s); it expires by itself", bot_id, error)

    async def halt(self, bot_id: str, until: datetime) -> None:
        await self._kv.put(
            subjects.bot_halt_key(bot_id), encode(BotHalt(bot_id=bot_id, until=until))
        )

    async def halt_of(self, bot_id: str) -> BotHalt | None:
        try:
            entry = await self._kv.get(subjects.bot_halt_key(bot_id))
        except nats.js.errors.KeyNotFoundError:
            return None
        try:
            return decode(BotHalt, entry.value) if entry.value else None
        except DecodeError:
            return None

    async def spend_of(self, bot_id: str) -> BotSpend | None:
        try:
            entry = await self._kv.get(subjects.bot_spend_key(bot_id))
        except nats.js.errors.KeyNotFoundError:
            return None
        try:
            return decode(BotSpend, entry.value) if entry.value else None
        except DecodeError:
            return None

    async def spend(self, spend: BotSpend) -> None:
        await self._kv.put(subjects.bot_spend_key(spend.bot_id), encode(spend))

    async def fault(self, fault: FaultRecord) -> None:
        await self._kv.put(subjects.fault_key(fault.uid), encode(fault))
