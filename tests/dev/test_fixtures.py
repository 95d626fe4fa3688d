"""The per-test fixtures isolate tests from each other."""

from __future__ import annotations

import nats

from herald.core import streams
from herald.emulator import EmulatorClient, RunningEmulator


async def test_nats_url_starts_without_streams(nats_url: str) -> None:
    client = await nats.connect(nats_url)
    try:
        js = client.jetstream()
        assert await js.streams_info() == []
        await streams.ensure_work_stream(js)
        assert len(await js.streams_info()) == 1
    finally:
        await client.close()


async def test_emulator_is_fresh(emulator: RunningEmulator) -> None:
    async with EmulatorClient(emulator.url) as client:
        summary = await client.summary()
    assert summary.total == 0
