"""The JetStream resources Herald uses, declared once and created idempotently by whoever
starts first (the operator, a sender, a test)."""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.api import (
    DiscardPolicy,
    KeyValueConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError, BucketNotFoundError
from nats.js.kv import KeyValue

from herald.core import subjects

__all__ = ["ensure_control_bucket", "ensure_events_stream", "ensure_work_stream"]

# Long enough to cover an operator restart mid-publish; the ledger claim guards beyond it.
WORK_DUPLICATE_WINDOW = 15 * 60.0
# Completion records wait this long for an admin bot that is down.
EVENTS_MAX_AGE = 7 * 24 * 3600.0


async def _add_or_update(js: JetStreamContext, config: StreamConfig) -> None:
    try:
        await js.add_stream(config)
    except BadRequestError:
        # Already there with another config (e.g. an older Herald): converge on ours.
        await js.update_stream(config)


async def ensure_work_stream(js: JetStreamContext, *, replicas: int = 1) -> None:
    """Work queue: each batch is removed once a sender acks it; consumers filter per uid."""
    await _add_or_update(
        js,
        StreamConfig(
            name=subjects.WORK_STREAM,
            subjects=[subjects.WORK_SUBJECTS],
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            duplicate_window=WORK_DUPLICATE_WINDOW,
            num_replicas=replicas,
        ),
    )


async def ensure_events_stream(js: JetStreamContext, *, replicas: int = 1) -> None:
    await _add_or_update(
        js,
        StreamConfig(
            name=subjects.EVENTS_STREAM,
            subjects=["herald.events.>"],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=EVENTS_MAX_AGE,
            num_replicas=replicas,
        ),
    )


async def ensure_control_bucket(js: JetStreamContext, *, replicas: int = 1) -> KeyValue:
    try:
        return await js.key_value(subjects.CONTROL_BUCKET)
    except BucketNotFoundError:
        return await js.create_key_value(
            KeyValueConfig(
                bucket=subjects.CONTROL_BUCKET,
                history=1,
                storage=StorageType.FILE,
                replicas=replicas,
            )
        )
