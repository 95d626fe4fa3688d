"""The shape of seeds/004: chunks of 100 recipients as queued tasks, one worker sending each
chunk's messages one after another, a pause between chunks.

    python bench/_seed004.py enqueue --nats URL --first 1 --count 1500
    python bench/_seed004.py work --nats URL --api URL --token TOKEN --done FILE

The seed queues its chunk tasks in Celery; JetStream stands in for Celery's broker here,
with Celery's default acknowledgement: a task is acked when the worker takes it
(acks_late=False), so a worker killed mid-chunk loses the rest of that chunk and the other
chunks wait for the next worker. Each chunk opens and closes its own bot session, as the
seed's tasks do. `--message-pause` is the seed's own 1 s between messages within a chunk;
the benchmark's default of 0 measures a more generous variant.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from pathlib import Path

import nats
from _bots import make_bot, send_retrying, wait_for_stop
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig
from nats.js.errors import NotFoundError

STREAM = "SEED004"
SUBJECT = "seed004.chunks"
DURABLE = "seed004"
CHUNK = 100


async def enqueue(nats_url: str, first: int, count: int) -> None:
    client = await nats.connect(nats_url)
    try:
        js = client.jetstream()
        with contextlib.suppress(NotFoundError):  # a previous run's chunks
            await js.delete_stream(STREAM)
        await js.add_stream(StreamConfig(name=STREAM, subjects=[SUBJECT]))
        await js.add_consumer(
            STREAM, ConsumerConfig(durable_name=DURABLE, ack_policy=AckPolicy.EXPLICIT)
        )
        ids = list(range(first, first + count))
        for start in range(0, count, CHUNK):
            await js.publish(SUBJECT, json.dumps(ids[start : start + CHUNK]).encode())
    finally:
        await client.close()


async def work(
    nats_url: str, api_url: str, token: str, *, message_pause: float, chunk_pause: float
) -> None:
    client = await nats.connect(nats_url)
    try:
        js = client.jetstream()
        subscription = await js.pull_subscribe(SUBJECT, durable=DURABLE, stream=STREAM)
        while True:
            try:
                (message,) = await subscription.fetch(1, timeout=2)
            except NatsTimeout:
                info = await js.consumer_info(STREAM, DURABLE)
                if info.num_pending == 0 and info.num_ack_pending == 0:
                    return
                continue
            await message.ack()  # Celery's default: acknowledged as the task starts
            bot = make_bot(api_url, token)
            try:
                for chat_id in json.loads(message.data):
                    await send_retrying(bot, chat_id)
                    if message_pause:
                        await asyncio.sleep(message_pause)
            finally:
                await bot.session.close()
            await asyncio.sleep(chunk_pause)
    finally:
        await client.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    enqueuing = commands.add_parser("enqueue")
    enqueuing.add_argument("--nats", required=True)
    enqueuing.add_argument("--first", type=int, required=True)
    enqueuing.add_argument("--count", type=int, required=True)
    working = commands.add_parser("work")
    working.add_argument("--nats", required=True)
    working.add_argument("--api", required=True)
    working.add_argument("--token", required=True)
    working.add_argument("--done", type=Path, required=True)
    working.add_argument("--message-pause", type=float, default=0.0)
    working.add_argument("--chunk-pause", type=float, default=1.0)
    args = parser.parse_args()
    if args.command == "enqueue":
        await enqueue(args.nats, args.first, args.count)
    else:
        await work(
            args.nats,
            args.api,
            args.token,
            message_pause=args.message_pause,
            chunk_pause=args.chunk_pause,
        )
        await wait_for_stop(args.done)


if __name__ == "__main__":
    asyncio.run(main())
