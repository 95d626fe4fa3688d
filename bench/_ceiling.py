"""The ceiling of this client stack: a plain aiohttp client on uvloop posting pre-built
sendMessage JSON bodies to an emulator, `--concurrency` requests in flight, nothing else (no
ledger, no pacing, no aiogram). bench/sender_throughput.py runs it beside Herald's sender.

    python bench/_ceiling.py URL TOKEN --messages 20000 --concurrency 160

Prints one line of JSON: messages, seconds, msg_per_s, cpu_seconds (this process's).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time

import aiohttp
import orjson

from herald.core import loops


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _run(url: str, token: str, messages: int, concurrency: int) -> dict[str, float]:
    # The bodies are built before the clock starts: what is measured is the HTTP alone.
    bodies = [
        orjson.dumps({"chat_id": chat, "text": f"Hello <b>User{chat}</b>", "parse_mode": "HTML"})
        for chat in range(1, messages + 1)
    ]
    endpoint = f"{url}/bot{token}/sendMessage"
    headers = {"Content-Type": "application/json"}
    queue = iter(bodies)
    failures = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal failures
            for body in queue:
                async with session.post(endpoint, data=body, headers=headers) as response:
                    answer = orjson.loads(await response.read())
                    failures += not answer.get("ok")

        cpu, started = _cpu(), time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds, cpu = time.monotonic() - started, _cpu() - cpu
    return {
        "messages": messages,
        "failures": failures,
        "seconds": round(seconds, 3),
        "msg_per_s": round(messages / seconds, 1),
        "cpu_seconds": round(cpu, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("url")
    parser.add_argument("token")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=160)
    args = parser.parse_args()
    print(json.dumps(loops.run(_run(args.url, args.token, args.messages, args.concurrency))))


if __name__ == "__main__":
    main()
