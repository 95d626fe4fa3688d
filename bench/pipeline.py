"""Benchmark: the whole pipeline on local processes, as a user sees it. Not a test; prints
figures.

    .venv/bin/python bench/pipeline.py

- delivered rate / allowed rate at 30 msg/s with Telegram's usual 80 ms round trip, and at
  1000 msg/s with allow_paid_broadcast (goal >= 0.98, zero 429s);
- apply -> first message accepted by the emulator, from zero sender replicas (cold: the
  sender process must start) and with one warm replica (goal <= 2 s);
- pause accepted by the API server -> last message accepted (goal <= 1 s).

Everything is real: kube-apiserver + etcd, nats-server, PostgreSQL, the emulator, the
`herald-operator` process and `herald-sender` processes run by the dev supervisor.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import psutil

from herald.core.migrating import apply_migrations
from herald.dev import controlplane
from herald.dev.kubectl import Kubectl
from herald.dev.nats import NatsAccess, NatsServer
from herald.dev.postgres import PostgresCluster
from herald.dev.systems import TOKEN, LocalSystem, local_system


@contextlib.asynccontextmanager
async def system(
    workdir: Path,
    plane: controlplane.ControlPlane,
    nats: NatsAccess,
    pg: PostgresCluster,
    *,
    emulator_flags: list[str],
    settings: dict[str, str],
    apis: int = 0,
) -> AsyncIterator[LocalSystem]:
    name = f"b{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(pg.dsn())
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    db = await asyncpg.connect(pg.dsn(name))
    await apply_migrations(db)
    await db.close()
    kubectl = Kubectl(plane.kubeconfig)
    kubectl("create", "namespace", name)
    async with local_system(
        kubeconfig=plane.kubeconfig,
        kubectl=kubectl.in_namespace(name),
        database=pg.dsn(name),
        nats=nats,
        logs=workdir / name,
        emulator_flags=emulator_flags,
        settings=settings,
        apis=apis,
    ) as running:
        yield running


async def wait_total(herald: LocalSystem, count: int, within: float) -> None:
    deadline = time.monotonic() + within
    async with herald.emulator() as emulator:
        while (await emulator.summary(token=TOKEN)).total < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"fewer than {count} messages after {within:.0f}s")
            await asyncio.sleep(0.2)


async def no_senders(herald: LocalSystem, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while herald.supervisor.pids:
        if time.monotonic() > deadline:
            raise RuntimeError(f"senders still running after {within:.0f}s")
        await asyncio.sleep(0.2)


def cpu_by_name() -> dict[str, float]:
    """CPU seconds so far of every process on the machine, summed by process name (a
    Python console script's by its script: herald-sender, herald-emulator...)."""
    totals: dict[str, float] = {}
    for process in psutil.process_iter(["name", "cmdline", "cpu_times"]):
        times = process.info["cpu_times"]
        if times is not None:
            name = process.info["name"] or "?"
            argv = process.info["cmdline"] or []
            if name.startswith("python") and len(argv) > 1:  # a script or module: its name
                name = argv[2] if argv[1] == "-m" and len(argv) > 2 else Path(argv[1]).name
            totals[name] = totals.get(name, 0.0) + times.user + times.system
    return totals


def cores_used(before: dict[str, float], after: dict[str, float], seconds: float) -> str:
    """Cores each kind of process used between two readings, the busiest first."""
    used = {name: (after[name] - before.get(name, 0.0)) / seconds for name in after}
    busiest = sorted(((c, n) for n, c in used.items() if c >= 0.02), reverse=True)
    return ", ".join(f"{name} {cores:.2f}" for cores, name in busiest)


async def rate_run(herald: LocalSystem, *, rate: int, paid: bool, count: int) -> str:
    await herald.seed(herald.subscribers(count, start=1_000_000))
    name = f"rate-{rate}"
    before, started = cpu_by_name(), time.monotonic()
    herald.apply(
        name,
        {
            "content": {"text": "rate run"},
            "audience": {"subscribers": {}},
            "rate": {"messagesPerSecond": rate, "allowPaidBroadcast": paid},
        },
    )
    await herald.wait_condition(name, "Complete", within=count / rate * 3 + 60)
    cores = cores_used(before, cpu_by_name(), time.monotonic() - started)
    async with herald.emulator() as emulator:
        summary = await emulator.summary(token=TOKEN)
        messages = await emulator.messages(token=TOKEN)
    times = sorted(m.monotonic for m in messages)
    # Steady state: from the first accepted message to the last, (n - 1) intervals.
    achieved = (len(times) - 1) / (times[-1] - times[0])
    return (
        f"{rate:>5}/s {'paid' if paid else 'free'}: {len(times)} messages, achieved "
        f"{achieved:.1f}/s = {achieved / rate:.3f} of the limit, max in any second "
        f"{summary.max_per_second.get(TOKEN, 0)}, 429s {summary.too_many_requests.get(TOKEN, 0)}, "
        f"chats messaged twice {len(summary.duplicates.get(TOKEN, {}))}; cores used, "
        f"apply to Complete, of {psutil.cpu_count()}: {cores}"
    )


async def first_message(herald: LocalSystem, label: str) -> str:
    await herald.seed(herald.subscribers(50, start=2_000_000))
    async with herald.emulator() as emulator:
        before = (await emulator.summary(token=TOKEN)).total
    name = f"first-{label.split(',', maxsplit=1)[0]}-{label.rsplit(' ', maxsplit=1)[-1]}"
    applied = dt.datetime.now(dt.UTC)
    herald.apply(name, {"content": {"text": name}, "audience": {"subscribers": {}}})
    await wait_total(herald, before + 1, within=60)
    async with herald.emulator() as emulator:
        messages = await emulator.messages(token=TOKEN)
    first = min(m.wall for m in messages if m.payload.get("text") == name)
    await herald.wait_condition(name, "Complete", within=60)
    return f"apply -> first message ({label}): {(first - applied).total_seconds():.2f}s"


async def pause_run(herald: LocalSystem) -> str:
    await herald.seed(herald.subscribers(600, start=3_000_000))
    herald.apply(
        "pause",
        {
            "content": {"text": "pause"},
            "audience": {"subscribers": {}},
            "rate": {"messagesPerSecond": 30},
        },
    )
    await wait_total(herald, 100, within=60)
    accepted = dt.datetime.now(dt.UTC)
    await asyncio.to_thread(
        herald.kubectl, "patch", "bc", "pause", "--type=merge", "-p", '{"spec":{"paused":true}}'
    )
    await asyncio.sleep(4)
    async with herald.emulator() as emulator:
        messages = await emulator.messages(token=TOKEN)
    last = max(m.wall for m in messages)
    return f"pause accepted -> last message: {max(0.0, (last - accepted).total_seconds()):.2f}s"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60, help="length of each rate run")
    parser.add_argument(
        "--only", choices=["rates", "first"], default=None, help="the rate runs or the rest"
    )
    parser.add_argument(
        "--rate",
        type=int,
        choices=[30, 1000],
        action="append",
        help="only this rate run (repeatable); both by default",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="apply -> first message runs of each kind"
    )
    args = parser.parse_args()
    rates, firsts = args.only in (None, "rates"), args.only in (None, "first")
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
                print(line, flush=True)  # a long run shows what it has so far
                lines.append(line)

            def herald_with(
                settings: dict[str, str],
            ) -> contextlib.AbstractAsyncContextManager[LocalSystem]:
                return system(
                    workdir,
                    plane,
                    nats_server.access,
                    pg,
                    emulator_flags=["--latency-ms=80"],
                    settings=settings,
                )

            for rate, paid in ((30, False), (1000, True)) if rates else ():
                if args.rate is not None and rate not in args.rate:
                    continue
                async with herald_with({}) as herald:
                    report(
                        await rate_run(herald, rate=rate, paid=paid, count=int(rate * args.seconds))
                    )
            if firsts:
                # Replicas back to zero as soon as a broadcast ends, so each run starts cold.
                async with herald_with({"HERALD_SCALING_SCALE_DOWN_SECONDS": "0"}) as herald:
                    await asyncio.sleep(6)  # an operator that has been running a while
                    for run in range(args.repeat):
                        await no_senders(herald)
                        report(await first_message(herald, f"cold, 0 replicas, run {run + 1}"))
                async with herald_with({"HERALD_SCALING_MIN_REPLICAS": "1"}) as herald:
                    await asyncio.sleep(6)  # let the warm replica start
                    for run in range(args.repeat):
                        report(await first_message(herald, f"warm, min 1 replica, run {run + 1}"))
                    report(await pause_run(herald))
            print("\n".join(["", "Figures:", *lines]))


if __name__ == "__main__":
    asyncio.run(main())
