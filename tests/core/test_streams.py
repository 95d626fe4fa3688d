"""Stream and bucket creation is idempotent against a real nats-server, and only the
operator creates: the others expect."""

from __future__ import annotations

import nats
import pytest

from herald.core import streams, subjects
from herald.dev.nats import NatsServer


async def test_ensuring_twice_is_harmless(nats_server: NatsServer) -> None:
    client = await nats.connect(nats_server.url)
    try:
        js = client.jetstream()
        for _ in range(2):
            await streams.ensure_work_stream(js)
            await streams.ensure_events_stream(js)
            bucket = await streams.ensure_control_bucket(js)
        await bucket.put("probe", b"1")
        assert (await bucket.get("probe")).value == b"1"
        info = await js.stream_info(subjects.WORK_STREAM)
        assert info.config.duplicate_window == streams.WORK_DUPLICATE_WINDOW
    finally:
        await client.close()


async def test_only_the_owner_converges_an_existing_stream(nats_server: NatsServer) -> None:
    client = await nats.connect(nats_server.url)
    try:
        js = client.jetstream()
        await streams.ensure_work_stream(js, replicas=1)
        info = await js.stream_info(subjects.WORK_STREAM)
        # Someone (an older Herald, an administrator) configured it otherwise.
        info.config.duplicate_window = 60.0
        await js.update_stream(info.config)
        await streams.ensure_work_stream(js)  # a sender: uses it as it is
        assert (await js.stream_info(subjects.WORK_STREAM)).config.duplicate_window == 60.0
        await streams.ensure_work_stream(js, replicas=1)  # the operator: converges
        converged = await js.stream_info(subjects.WORK_STREAM)
        assert converged.config.duplicate_window == streams.WORK_DUPLICATE_WINDOW
    finally:
        await client.close()


async def test_senders_and_the_bot_expect_what_only_the_operator_creates(nats_url: str) -> None:
    client = await nats.connect(nats_url)
    try:
        js = client.jetstream()
        for expect, stream in (
            (streams.expect_work_stream, subjects.WORK_STREAM),
            (streams.expect_events_stream, subjects.EVENTS_STREAM),
            (streams.expect_control_bucket, f"KV_{subjects.CONTROL_BUCKET}"),
        ):
            with pytest.raises(streams.MissingStreamError, match="the operator creates it") as e:
                await expect(js)
            assert e.value.stream == stream
            assert stream in str(e.value)
        await streams.ensure_work_stream(js, replicas=1)
        await streams.ensure_events_stream(js, replicas=1)
        await streams.ensure_control_bucket(js, replicas=1)
        await streams.expect_work_stream(js)
        await streams.expect_events_stream(js)
        bucket = await streams.expect_control_bucket(js)
        assert (await bucket.status()).bucket == subjects.CONTROL_BUCKET
    finally:
        await client.close()
