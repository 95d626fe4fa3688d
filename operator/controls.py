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
    BroadcastState,
    ControlRecord,
    DecodeError,
    FaultRecord,
    SendRate,
)

__all__ = [
    "control_record",
    "delete_control",
    "delete_fault",
    "list_controls",
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
    token: SecretStr,
    spec: BroadcastSpec,
    state: BroadcastState,
) -> ControlRecord:
    """What senders need of a Broadcast, from its spec: the one place the CRD's fields are
    mapped onto the wire record."""
    return ControlRecord(
        uid=uid,
        namespace=namespace,
        name=name,
        generation=generation,
        bot_id=subjects.bot_id_of(token.get_secret_value()),
        token=token,
        content=spec.content,
        rate=SendRate.of(spec.rate),
        delivery=spec.delivery,
        state=state,
        deadline=spec.schedule.deadline if spec.schedule else None,
    )


async def _get(kv: KeyValue, key: str) -> bytes | None:
    try:
        entry = await kv.get(key)
    except KeyNotFoundError:  # also raised for a deleted or purged key
        return None
    return entry.value


async def put_control(kv: KeyValue, record: ControlRecord) -> bool:
    """Write the record if it differs from the stored one; True when written. Skipping equal
    writes keeps senders' watches quiet while the status refreshes every few seconds."""
    key = subjects.control_key(record.uid)
    data = envelopes.encode(record)
    if await _get(kv, key) == data:
        return False
    await kv.put(key, data)
    return True


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
