"""Benchmark: herald-api's transactional messages on local processes. Not a test; prints
figures.

    .venv/bin/python bench/api_latency.py [--messages 200] [--seconds 10]

- POST accepted -> Telegram's acceptance (the emulator's, 80 ms per request as Telegram's
  usual round trip): p50/p95/p99 with the bot idle, then while a broadcast holds the same bot
  at its full 30 msg/s (target p99 <= 300 ms);
- accepted POST/s of one herald-api process, 64 requests in flight, distinct keys (target
  >= 1,000/s); the bot's senders run beside it, and the client runs on the same 2 cores.

Everything is real: kube-apiserver + etcd (TokenReview, SubjectAccessReview), nats-server,
PostgreSQL, the emulator, the operator, senders and herald-api processes.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from pipeline import system

from herald.dev import controlplane
from herald.dev.kubectl import Kubectl
from herald.dev.nats import NatsServer
from herald.dev.postgres import PostgresCluster
from herald.dev.systems import BOT_SECRET, TOKEN, LocalSystem

LATENCY = ["--latency-ms=80"]
NO_LIMITS = ["--rate=0", "--per-chat-rate=0"]


def url_of(herald: LocalSystem) -> str:
    namespace = herald.kubectl.namespace
    return f"{herald.api_urls[0]}/v1/namespaces/{namespace}/bots/{BOT_SECRET}/messages"


async def ready(herald: LocalSystem, session: aiohttp.ClientSession, token: str) -> None:
    """Until herald-api knows the Bot: an unknown message of it, not an unknown Bot."""
    while True:
        async with session.get(
            f"{url_of(herald)}/{uuid.uuid4()}", headers={"Authorization": f"Bearer {token}"}
        ) as response:
            if str((await response.json()).get("detail", "")).startswith("no message"):
                return
        await asyncio.sleep(0.3)


def percentiles(seconds: list[float]) -> str:
    cuts = statistics.quantiles(seconds, n=100, method="inclusive")
    p50, p95, p99 = cuts[49], cuts[94], cuts[98]
    return f"p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms"


async def accepted_at(
    herald: LocalSystem, chats: set[int], within: float
) -> dict[int, dt.datetime]:
    """When the emulator accepted a message to each of `chats`, once all were (or `within`)."""
    deadline = time.monotonic() + within
    while True:
        async with herald.emulator() as emulator:
            accepted = {
                m.chat_id: m.wall
                for m in await emulator.messages(token=TOKEN)
                if m.sending and m.chat_id in chats
            }
        if len(accepted) == len(chats) or time.monotonic() > deadline:
            return accepted
        await asyncio.sleep(0.2)


async def latencies(herald: LocalSystem, token: str, count: int, *, start: int) -> str:
    """A first message, alone: the sender takes the bot on its first traffic. Then `count`
    messages, five a second, each to its own chat; POST -> acceptance of each."""
    posted: dict[int, dt.datetime] = {}
    async with aiohttp.ClientSession() as session:
        await ready(herald, session, token)
        first = start - 1
        began = dt.datetime.now(dt.UTC)
        async with session.post(
            url_of(herald),
            json={"chatId": first, "content": {"text": "first"}},
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": str(first)},
        ) as response:
            assert response.status == 202, await response.text()
        taken = (await accepted_at(herald, {first}, 60))[first] - began

        async def one(chat: int) -> None:
            posted[chat] = dt.datetime.now(dt.UTC)
            async with session.post(
                url_of(herald),
                json={"chatId": chat, "content": {"text": "Your code is 123456"}},
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": str(chat)},
            ) as response:
                assert response.status == 202, await response.text()

        sending = []
        for index in range(count):
            sending.append(asyncio.create_task(one(start + index)))
            await asyncio.sleep(0.2)
        await asyncio.gather(*sending)
    accepted = await accepted_at(herald, set(posted), 60)
    seconds = [
        (accepted[chat] - at).total_seconds() for chat, at in posted.items() if chat in accepted
    ]
    return (
        f"first message {taken.total_seconds() * 1000:.0f} ms; then {len(seconds)}/{count} "
        f"accepted, {percentiles(seconds)}"
    )


async def alone(herald: LocalSystem, count: int) -> str:
    token = await asyncio.to_thread(herald.app_token)
    return f"POST -> Telegram, bot idle: {await latencies(herald, token, count, start=500_000)}"


async def beside_broadcast(herald: LocalSystem, count: int) -> str:
    # Long enough to hold the bot at 30 msg/s through all the transactional messages.
    await herald.seed(herald.subscribers(int(count / 5 * 30 + 600), start=1_000_000))
    token = await asyncio.to_thread(herald.app_token)
    herald.apply(
        "saturating",
        {
            "content": {"text": "Campaign"},
            "audience": {"subscribers": {}},
            "rate": {"messagesPerSecond": 30},
        },
    )
    deadline = time.monotonic() + 60
    async with herald.emulator() as emulator:
        while (await emulator.summary(token=TOKEN)).total < 100:
            if time.monotonic() > deadline:
                raise RuntimeError("the broadcast sent nothing in 60 s")
            await asyncio.sleep(0.2)
    figures = await latencies(herald, token, count, start=600_000)
    async with herald.emulator() as emulator:
        summary = await emulator.summary(token=TOKEN)
    return (
        f"POST -> Telegram, beside a broadcast at the bot's 30/s: {figures}; max in any second "
        f"{summary.max_per_second.get(TOKEN, 0)}, 429s {summary.too_many_requests.get(TOKEN, 0)}"
    )


async def throughput(herald: LocalSystem, seconds: float) -> str:
    token = await asyncio.to_thread(herald.app_token)
    url = url_of(herald)
    headers = {"Authorization": f"Bearer {token}"}
    accepted = refused = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:
        await ready(herald, session, token)
        stop = time.monotonic() + seconds

        async def client(lane: int) -> None:
            nonlocal accepted, refused
            n = 0
            while time.monotonic() < stop:
                n += 1
                body = {"chatId": 2_000_000 + lane * 1_000_000 + n, "content": {"text": "x"}}
                async with session.post(
                    url, json=body, headers=headers | {"Idempotency-Key": f"{lane}-{n}"}
                ) as response:
                    await response.read()
                    if response.status == 202:
                        accepted += 1
                    else:
                        refused += 1

        began = time.monotonic()
        await asyncio.gather(*(client(lane) for lane in range(64)))
        spent = time.monotonic() - began
    return (
        f"one herald-api process, 64 in flight: {accepted / spent:.0f} accepted POST/s "
        f"({accepted} in {spent:.1f} s, {refused} refused)"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200, help="messages per latency run")
    parser.add_argument("--seconds", type=float, default=10, help="length of the POST/s run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        with (
            controlplane.running(workdir / "cp", say=print) as plane,
            NatsServer(workdir / "nats") as nats_server,
            PostgresCluster(workdir / "pg") as pg,
        ):
            Kubectl(plane.kubeconfig).install_crds()
            lines: list[str] = []

            def report(line: str) -> None:
                print(line, flush=True)
                lines.append(line)

            warm = {"HERALD_SCALING_MIN_REPLICAS": "1"}
            unbounded = warm | {"HERALD_API_QUEUE_BOUND": "100000000"}
            runs: list[
                tuple[list[str], dict[str, str], Callable[[LocalSystem], Awaitable[str]]]
            ] = [
                (LATENCY, warm, lambda herald: alone(herald, args.messages)),
                (LATENCY, warm, lambda herald: beside_broadcast(herald, args.messages)),
                (NO_LIMITS, unbounded, lambda herald: throughput(herald, args.seconds)),
            ]
            for flags, settings, run in runs:
                async with system(
                    workdir,
                    plane,
                    nats_server.access,
                    pg,
                    emulator_flags=flags,
                    settings=settings,
                    apis=1,
                ) as herald:
                    report(await run(herald))
            print("\n".join(["", "Figures:", *lines]))


if __name__ == "__main__":
    asyncio.run(main())
