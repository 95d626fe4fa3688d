"""The JetStream resources Herald uses, declared once and created idempotently by whoever
starts first (the operator, a sender, a test).

Only the operator owns their configuration: it passes ``replicas`` (HERALD_NATS_REPLICAS) and
converges an existing stream on it. Senders and the bot pass nothing: they create what is
missing with one replica and leave an existing stream as they find it, so a component with
other settings can never shrink an R3 stream to R1.
"""

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


async def _add_or_update(js: JetStreamContext, config: StreamConfig, *, converge: bool) -> None:
    try:
        await js.add_stream(config)
    except BadRequestError:
        # Already there with another config (e.g. an older Herald or fewer replicas).
        if converge:
            await js.update_stream(config)


async def ensure_work_stream(js: JetStreamContext, *, replicas: int | None = None) -> None:
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
            num_replicas=replicas or 1,
        ),
        converge=replicas is not None,
    )


async def ensure_events_stream(js: JetStreamContext, *, replicas: int | None = None) -> None:
    await _add_or_update(
        js,
        StreamConfig(
            name=subjects.EVENTS_STREAM,
            subjects=["herald.events.>"],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=EVENTS_MAX_AGE,
            num_replicas=replicas or 1,
        ),
        converge=replicas is not None,
    )


async def ensure_control_bucket(js: JetStreamContext, *, replicas: int | None = None) -> KeyValue:
    # A bucket is created once; changing its replicas later is an administrator's move
    # (`nats stream edit KV_herald-control --replicas 3`).
    try:
        return await js.key_value(subjects.CONTROL_BUCKET)
    except BucketNotFoundError:
        return await js.create_key_value(
            KeyValueConfig(
                bucket=subjects.CONTROL_BUCKET,
                history=1,
                storage=StorageType.FILE,
                replicas=replicas or 1,
            )
        )
