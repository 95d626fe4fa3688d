"""Sender benchmarks (figures, not tests): real NATS, Postgres, emulator and sender processes.

    .venv/bin/python bench/sender_throughput.py [--recipients 20000] [--seconds 20]

1. Throughput per process: emulator limits off, no latency, one paid broadcast with a rate
   far above what a process can do. Goal: >= 1,500 msg/s.
2. Rate fidelity: Telegram's free 30 msg/s, 80 ms per request, ~`--seconds` of sending.
   Goal: delivered / allowed >= 0.98 with zero 429s.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from _harness import (
    BIN,
    Infrastructure,
    delivered,
    emulator,
    figures,
    infrastructure,
    prepare_broadcast,
    sender_env,
)

from herald.dev.processes import ManagedProcess


async def _scenario(
    name: str,
    *,
    work: Path,
    infra: Infrastructure,
    emulator_args: list[str],
    extra_env: dict[str, str],
    n: int,
    rate: float,
    paid: bool,
    allowed: float | None,
) -> dict[str, Any]:
    with emulator(work, name, emulator_args) as url:
        # The subscriber table is reused: chats 1..n again, under a new broadcast uid.
        uid = await prepare_broadcast(infra, range(1, n + 1), rate=rate, paid=paid)
        sender = ManagedProcess(
            "sender",
            [str(BIN / "herald-sender")],
            work / f"{name}-sender.log",
            env=sender_env(infra, url, **extra_env),
        ).start()
        try:
            deadline = time.monotonic() + 600
            while await delivered(infra.dsn, uid) < n and time.monotonic() < deadline:
                if not sender.alive:
                    raise RuntimeError(f"sender died:\n{sender.tail()}")
                await asyncio.sleep(0.5)
        finally:
            sender.stop()
        seen = await figures(url)
    result: dict[str, Any] = {
        "scenario": name,
        "messages": seen.messages,
        "seconds": seen.seconds,
        "msg_per_s": round(seen.msg_per_s, 1),
        "max_in_any_second": seen.max_in_any_second,
        "429s": seen.too_many_requests,
        "duplicates": seen.chats_messaged_twice,
    }
    if allowed is not None:
        result["delivered_over_allowed"] = round(seen.msg_per_s / allowed, 4)
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--only", choices=["throughput", "rate"], default=None)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="herald-bench-") as tmp:
        work = Path(tmp)
        async with infrastructure(work) as infra:
            if args.only in (None, "throughput"):
                results.append(
                    await _scenario(
                        "throughput",
                        work=work,
                        infra=infra,
                        emulator_args=["--rate", "0", "--paid-rate", "0", "--per-chat-rate", "0"],
                        extra_env={"HERALD_SENDER_PAID_LIMIT": "100000"},
                        n=args.recipients,
                        rate=100_000,
                        paid=True,
                        allowed=None,
                    )
                )
            if args.only in (None, "rate"):
                results.append(
                    await _scenario(
                        "rate-30-at-80ms",
                        work=work,
                        infra=infra,
                        emulator_args=["--latency-ms", "80"],
                        extra_env={},
                        n=int(30 * args.seconds),
                        rate=30,
                        paid=False,
                        allowed=30.0,
                    )
                )
    for result in results:
        print("  ".join(f"{key}={value}" for key, value in result.items()))


if __name__ == "__main__":
    asyncio.run(main())
