"""Sender benchmarks (figures, not tests): real NATS, Postgres, emulator and sender processes.

    .venv/bin/python bench/sender_throughput.py [--recipients 20000] [--seconds 20]

1. Throughput per process: emulator limits off, no latency, one paid broadcast with a rate
   far above what a process can do. Goal (issue 15): >= 4,000 msg/s and >= 0.8 of the
   ceiling, which is measured in the same run: a plain aiohttp client (bench/_ceiling.py)
   posting pre-built sendMessage JSON bodies to a fresh emulator with the same limits, as
   many requests in flight as the sender allows. Also printed: the sender's CPU per
   message (from its first delivered message on, so start-up is left out) and the
   emulator's CPU per request, for both.
2. Rate fidelity: Telegram's free 30 msg/s, 80 ms per request, ~`--seconds` of sending.
   Goal: delivered / allowed >= 0.98 with zero 429s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _harness import (
    BENCH,
    BIN,
    TOKEN,
    Infrastructure,
    cpu_seconds,
    delivered,
    emulator_process,
    figures,
    infrastructure,
    prepare_broadcast,
    sender_env,
)

from herald.dev.processes import ManagedProcess

# The sender's default HERALD_SENDER_MAX_IN_FLIGHT: the ceiling keeps as many requests open.
CONCURRENCY = 160


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
    with emulator_process(work, name, emulator_args) as (url, emulator):
        # The subscriber table is reused: chats 1..n again, under a new broadcast uid.
        uid = await prepare_broadcast(infra, range(1, n + 1), rate=rate, paid=paid)
        emulator_cpu = cpu_seconds(emulator.pid)
        sender = ManagedProcess(
            "sender",
            [str(BIN / "herald-sender")],
            work / f"{name}-sender.log",
            env=sender_env(infra, url, **extra_env),
        ).start()
        first: tuple[int, float] | None = None  # (delivered, sender CPU) at the first reading
        try:
            deadline = time.monotonic() + 600
            while (done := await delivered(infra.dsn, uid)) < n and time.monotonic() < deadline:
                if not sender.alive:
                    raise RuntimeError(f"sender died:\n{sender.tail()}")
                if first is None and done > 0:
                    first = (done, cpu_seconds(sender.pid))
                await asyncio.sleep(0.1)
            sender_cpu = cpu_seconds(sender.pid)
        finally:
            sender.stop()
        emulator_cpu = cpu_seconds(emulator.pid) - emulator_cpu
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
    if first is not None and n > first[0]:
        result["sender_cpu_ms_per_msg"] = round(1000 * (sender_cpu - first[1]) / (n - first[0]), 3)
    requests = seen.messages + seen.too_many_requests
    result["emulator_cpu_ms_per_request"] = round(1000 * emulator_cpu / max(requests, 1), 3)
    if allowed is not None:
        result["delivered_over_allowed"] = round(seen.msg_per_s / allowed, 4)
    return result


def _ceiling(work: Path, emulator_args: list[str], n: int, python: str) -> dict[str, Any]:
    """bench/_ceiling.py against a fresh emulator with `emulator_args`."""
    with emulator_process(work, "ceiling", emulator_args) as (url, emulator):
        emulator_cpu = cpu_seconds(emulator.pid)
        out = subprocess.run(
            [
                *(python, str(BENCH / "_ceiling.py"), url, TOKEN),
                *("--messages", str(n), "--concurrency", str(CONCURRENCY)),
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        emulator_cpu = cpu_seconds(emulator.pid) - emulator_cpu
    seen = json.loads(out)
    return {
        "scenario": "ceiling",
        "messages": seen["messages"],
        "failures": seen["failures"],
        "seconds": seen["seconds"],
        "msg_per_s": seen["msg_per_s"],
        "client_cpu_ms_per_msg": round(1000 * seen["cpu_seconds"] / seen["messages"], 3),
        "emulator_cpu_ms_per_request": round(1000 * emulator_cpu / seen["messages"], 3),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--only", choices=["throughput", "rate"], default=None)
    parser.add_argument(
        "--ceiling-python",
        default=sys.executable,
        help="The interpreter of bench/_ceiling.py (it needs uvloop and orjson): to measure "
        "an older tree's sender against the same ceiling.",
    )
    args = parser.parse_args()
    results: list[dict[str, Any]] = []
    unlimited = ["--rate", "0", "--paid-rate", "0", "--per-chat-rate", "0"]
    with tempfile.TemporaryDirectory(prefix="herald-bench-") as tmp:
        work = Path(tmp)
        async with infrastructure(work) as infra:
            if args.only in (None, "throughput"):
                results.append(
                    await _scenario(
                        "throughput",
                        work=work,
                        infra=infra,
                        emulator_args=unlimited,
                        extra_env={"HERALD_SENDER_PAID_LIMIT": "100000"},
                        n=args.recipients,
                        rate=100_000,
                        paid=True,
                        allowed=None,
                    )
                )
                ceiling = _ceiling(work, unlimited, args.recipients, args.ceiling_python)
                results.append(ceiling)
                results.append(
                    {
                        "scenario": "sender/ceiling",
                        "ratio": round(results[-2]["msg_per_s"] / ceiling["msg_per_s"], 3),
                    }
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
