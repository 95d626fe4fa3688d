"""The design of seeds/000: one taskiq task per recipient through taskiq-nats' JetStream
broker, run by `taskiq worker`; a task sends with aiogram and sleeps on 429.

    BENCH_NATS_URL=... BENCH_API_URL=... BENCH_TOKEN=... taskiq worker _seed000:broker
    BENCH_NATS_URL=... python bench/_seed000.py --first 1 --count 1500   # the loader

As the seed says: JetStream broker, ormsgpack serialisation, the bot injected through the
worker's state, payload {user_id, chat_id, content_id, language}, `TelegramRetryAfter ->
await asyncio.sleep(retry_after)` (then the send is tried again), no other throttle: the seed
leaves the rate to "careful tuning of the number of workers", and this runs taskiq's defaults
(2 worker processes, 100 tasks at once each, ack when the task's result is saved, JetStream's
30 s ack wait). Left out: the Redis pause check per task and the Redis counters.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from typing import Any

import nats
import ormsgpack
from _bots import make_bot, send_retrying
from nats.js.errors import NotFoundError
from taskiq import Context, TaskiqDepends, TaskiqEvents, TaskiqState
from taskiq.abc.serializer import TaskiqSerializer
from taskiq_nats import PullBasedJetStreamBroker

STREAM = "taskiq_jetstream"  # taskiq-nats' defaults


class OrmsgpackSerializer(TaskiqSerializer):
    """The seed's serialiser choice (taskiq ships msgpack, not ormsgpack)."""

    def dumpb(self, value: Any) -> bytes:
        return ormsgpack.packb(value)

    def loadb(self, value: bytes) -> Any:
        return ormsgpack.unpackb(value)


NATS_URL = os.environ.get("BENCH_NATS_URL", "nats://127.0.0.1:4222")
broker = PullBasedJetStreamBroker(NATS_URL).with_serializer(OrmsgpackSerializer())


@broker.on_event(TaskiqEvents.WORKER_STARTUP)
async def _open_bot(state: TaskiqState) -> None:
    state.bot = make_bot(os.environ["BENCH_API_URL"], os.environ["BENCH_TOKEN"])


@broker.on_event(TaskiqEvents.WORKER_SHUTDOWN)
async def _close_bot(state: TaskiqState) -> None:
    await state.bot.session.close()


@broker.task(task_name="send_one_message")  # the loader runs as __main__
async def send_one_message(
    user_id: int,
    chat_id: int,
    content_id: int,
    language: str,
    context: Context = TaskiqDepends(),  # noqa: B008 (taskiq's way to inject the state)
) -> None:
    await send_retrying(context.state.bot, chat_id)


async def load(first: int, count: int) -> None:
    """The seed's loader: one task per recipient, kicked into JetStream."""
    client = await nats.connect(NATS_URL)
    try:
        with contextlib.suppress(NotFoundError):  # a previous run's tasks
            await client.jetstream().delete_stream(STREAM)
    finally:
        await client.close()
    await broker.startup()
    try:
        for chat_id in range(first, first + count):
            await send_one_message.kiq(
                user_id=chat_id, chat_id=chat_id, content_id=1, language="en"
            )
    finally:
        await broker.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Load one task per recipient.")
    parser.add_argument("--first", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    arguments = parser.parse_args()
    asyncio.run(load(arguments.first, arguments.count))
