"""The JetStream resources Herald uses, declared once.

The operator owns them: it creates what is missing when it starts (``ensure_*``, idempotent)
and converges an existing stream on ``replicas`` (HERALD_NATS_REPLICAS). Senders and the bot
only expect them (``expect_*``): their NATS users may look a stream up but not create or
change it (docs/nats.md), so a sender with other settings can never shrink an R3 stream to R1,
and one started before the operator ever ran stops with :class:`MissingStreamError`, which
says so, and is restarted. ``ensure_*`` without ``replicas`` creates with one replica and
leaves an existing stream alone: tests and tools with full access play the operator with it.
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
from nats.js.errors import BadRequestError, BucketNotFoundError, NotFoundError
from nats.js.kv import KeyValue

from herald.core import subjects

__all__ = [
    "MissingStreamError",
    "ensure_control_bucket",
    "ensure_events_stream",
    "ensure_messages_stream",
    "ensure_work_stream",
    "expect_control_bucket",
    "expect_events_stream",
    "expect_messages_stream",
    "expect_work_stream",
]

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


def _work_queue(name: str, subject: str, replicas: int | None) -> StreamConfig:
    """A work queue: each message is removed once a sender acks it; a re-publish under the
    same message id within the window is dropped."""
    return StreamConfig(
        name=name,
        subjects=[subject],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        duplicate_window=WORK_DUPLICATE_WINDOW,
        num_replicas=replicas or 1,
    )


async def ensure_work_stream(js: JetStreamContext, *, replicas: int | None = None) -> None:
    """Broadcasts' work batches; consumers filter per uid."""
    config = _work_queue(subjects.WORK_STREAM, subjects.WORK_SUBJECTS, replicas)
    await _add_or_update(js, config, converge=replicas is not None)


async def ensure_messages_stream(js: JetStreamContext, *, replicas: int | None = None) -> None:
    """Transactional messages, one subject per bot, each published under Herald's id of it."""
    config = _work_queue(subjects.MESSAGES_STREAM, subjects.MESSAGES_SUBJECTS, replicas)
    await _add_or_update(js, config, converge=replicas is not None)


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


class MissingStreamError(RuntimeError):
    """A stream only the operator creates is not there (yet)."""

    def __init__(self, stream: str) -> None:
        super().__init__(
            f"the JetStream stream {stream} does not exist: the operator creates it when it "
            "starts, so start the operator first, and check that this component's NATS user "
            "is in the operator's account (HERALD_NATS_*)"
        )
        self.stream = stream


async def _expect(js: JetStreamContext, stream: str) -> None:
    try:
        await js.stream_info(stream)
    except NotFoundError as error:
        raise MissingStreamError(stream) from error


async def expect_work_stream(js: JetStreamContext) -> None:
    await _expect(js, subjects.WORK_STREAM)


async def expect_messages_stream(js: JetStreamContext) -> None:
    await _expect(js, subjects.MESSAGES_STREAM)


async def expect_events_stream(js: JetStreamContext) -> None:
    await _expect(js, subjects.EVENTS_STREAM)


async def expect_control_bucket(js: JetStreamContext) -> KeyValue:
    try:
        return await js.key_value(subjects.CONTROL_BUCKET)
    except BucketNotFoundError as error:
        raise MissingStreamError(f"KV_{subjects.CONTROL_BUCKET}") from error
