"""The broadcast's control record in the ``herald-control`` KV bucket, and the fault record
senders leave next to it. Senders watch the bucket, so a put is how a pause reaches them."""

from __future__ import annotations

import logging

from nats.js.errors import KeyNotFoundError, NoKeysError
from nats.js.kv import KeyValue
from pydantic import SecretStr

from herald.core import envelopes, subjects
from herald.core.broadcasts import BroadcastSpec
from herald.core.envelopes import (
    BotRecord,
    BroadcastState,
    ControlRecord,
    DecodeError,
    FaultRecord,
    SendLimits,
    SendRate,
)
from herald.core.sealing import KeyRing, SealError

__all__ = [
    "control_record",
    "delete_bot",
    "delete_control",
    "delete_fault",
    "list_controls",
    "put_bot",
    "put_control",
    "read_fault",
]

logger = logging.getLogger(__name__)


def control_record(
    *,
    uid: str,
    namespace: str,
    name: str,
    generation: int,
    bot_id: str,
    token: SecretStr,
    limits: SendLimits | None,
    spec: BroadcastSpec,
    state: BroadcastState,
    ring: KeyRing,
    messages_per_second: float | None = None,
) -> ControlRecord:
    """What senders need of a Broadcast, from its spec: the one place the CRD's fields are
    mapped onto the wire record. A stopped broadcast's record drops its token.
    ``messages_per_second`` is the rate in force (:func:`herald.operator.estimating.
    rate_in_force`), which a spreadOver lowers; None: the spec's."""
    sealed = None
    if state is not BroadcastState.STOPPED:
        sealed = ring.seal(token.get_secret_value(), bound_to=uid)
    return ControlRecord(
        uid=uid,
        namespace=namespace,
        name=name,
        generation=generation,
        bot_id=bot_id,
        token=sealed,
        limits=limits,
        content=spec.content,
        rate=SendRate.of(spec.rate, messages_per_second=messages_per_second),
        delivery=spec.delivery,
        state=state,
        deadline=spec.schedule.deadline if spec.schedule else None,
        recall=spec.recall,
        correction=spec.correction,
    )


async def _get(kv: KeyValue, key: str) -> bytes | None:
    try:
        entry = await kv.get(key)
    except KeyNotFoundError:  # also raised for a deleted or purged key
        return None
    return entry.value


def _same(stored: bytes | None, record: ControlRecord | BotRecord, ring: KeyRing) -> bool:
    """Whether ``stored`` says what ``record`` says. Sealing draws a fresh nonce each time, so
    the bytes always differ: compare what the tokens open to, and the rest as it is."""
    if not stored:
        return False
    try:
        old = envelopes.decode(type(record), stored)
        if isinstance(old, ControlRecord) and isinstance(record, ControlRecord):
            same_token = (old.token is None and record.token is None) or (
                old.token is not None
                and record.token is not None
                and old.open_token(ring) == record.open_token(ring)
            )
        elif isinstance(old, BotRecord) and isinstance(record, BotRecord):
            same_token = (
                old.open_token(ring) == record.open_token(ring)
                and old.open_webhook_secret(ring) == record.open_webhook_secret(ring)
                and old.open_callback_secret(ring) == record.open_callback_secret(ring)
            )
        else:
            return False
    except (DecodeError, SealError):
        return False  # unreadable, or sealed under a key since retired: write it again
    # Re-sealed under the current primary key once the ring rotated.
    primary = f"{ring.primary}."
    resealed = old.token is not None and not old.token.startswith(primary)
    unsealed = (
        {"token": None, "webhook_secret": None, "callback_secret": None}
        if isinstance(old, BotRecord)
        else {}
    )
    unsealed = unsealed or {"token": None}
    return (
        same_token
        and not resealed
        and old.model_copy(update=unsealed) == record.model_copy(update=unsealed)
    )


async def put_control(kv: KeyValue, record: ControlRecord, ring: KeyRing) -> bool:
    """Write the record if it differs from the stored one; True when written. Skipping equal
    writes keeps senders' watches quiet while the status refreshes every few seconds."""
    key = subjects.control_key(record.uid)
    if _same(await _get(kv, key), record, ring):
        return False
    await kv.put(key, envelopes.encode(record))
    return True


async def put_bot(kv: KeyValue, record: BotRecord, ring: KeyRing) -> bool:
    """Write a verified Bot's record if it differs from the stored one; True when written."""
    if _same(await _get(kv, record.key), record, ring):
        return False
    await kv.put(record.key, envelopes.encode(record))
    return True


async def delete_bot(kv: KeyValue, namespace: str, name: str) -> None:
    await kv.purge(subjects.bot_record_key(namespace, name))


async def delete_control(kv: KeyValue, uid: str) -> None:
    # A purge drops the key's history too; senders see a delete marker and let go.
    await kv.purge(subjects.control_key(uid))


async def read_fault(kv: KeyValue, uid: str) -> FaultRecord | None:
    """A sender's report that the broadcast cannot go on, if there is one."""
    data = await _get(kv, subjects.fault_key(uid))
    if not data:
        return None
    try:
        return envelopes.decode(FaultRecord, data)
    except DecodeError as exc:
        # A fault we cannot read must not stop a broadcast; say so and go on.
        logger.warning("Ignoring an unreadable fault record for %s: %s", uid, exc)
        return None


async def delete_fault(kv: KeyValue, uid: str) -> None:
    await kv.purge(subjects.fault_key(uid))


async def list_controls(kv: KeyValue) -> list[ControlRecord]:
    """Every readable control record in the bucket; unreadable ones are skipped with a
    warning (a record of a newer format belongs to a newer operator)."""
    try:
        keys = await kv.keys()
    except NoKeysError:
        return []
    records = []
    for key in keys:
        if not key.startswith(subjects.control_key("")):
            continue
        data = await _get(kv, key)
        if not data:
            continue
        try:
            records.append(envelopes.decode(ControlRecord, data))
        except DecodeError as exc:
            logger.warning("Ignoring an unreadable control record %s: %s", key, exc)
    return records
