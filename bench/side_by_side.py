"""Herald's sender side by side with the designs it replaces, on the same emulator limits.

    .venv/bin/python bench/side_by_side.py [--recipients 1500] [--rounds 1]

Every system sends one message to each of `--recipients` chats through its own fresh
emulator that enforces Telegram's free limits (30 msg/s per bot, 1 msg/s per chat, 429 with
retry_after) and adds 80 ms to every request:

- herald: a real herald-sender process pulling work batches from JetStream, ledger in
  Postgres, as the operator leaves them;
- naive: the loop most bots run (send, sleep 1/30 s, sleep retry_after on 429);
- seed000: one taskiq task per recipient through taskiq-nats' JetStream broker, a real
  `taskiq worker` sending with aiogram and sleeping on 429;
- seed004: chunks of 100 queued tasks, each chunk sent one message after another, 1 s
  between chunks (see _seed004.py for what is and is not the seed's own).

Each system runs twice: a clean run (rate, 429s, CPU, memory) and a run in which its sending
process group is killed with SIGKILL once half the recipients have a message, then started
again and left to finish (chats messaged twice, chats never messaged). Systems run one after
another in one process, so background load hits them alike; `--rounds` repeats the whole
sequence and reports medians.

CPU and peak memory are those of each system's own processes (the whole process group: a
taskiq worker's children too). The NATS and Postgres servers all systems share, the
emulator, and the enqueuing side (Herald's operator, the seeds' loaders) are not in them;
the shared servers' CPU during each clean run is reported in its own column.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import math
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nats
import psutil
from _harness import (
    BENCH,
    BIN,
    FREE_LIMIT,
    TOKEN,
    Infrastructure,
    RunFigures,
    emulator,
    figures,
    infrastructure,
    ledger_states,
    prepare_broadcast,
    sender_env,
    unsettled,
)

from herald.dev.processes import ManagedProcess
from herald.emulator import EmulatorClient

ALLOWED = 30.0  # msg/s: the emulator's --rate, Telegram's free limit per bot (--rate changes it)
SAMPLE_SECONDS = 0.25


# ---------------------------------------------------------------- measuring processes


def _cpu_seconds(process: psutil.Process) -> float:
    # children_*: descendants already reaped (Postgres backends of closed connections).
    times = process.cpu_times()
    return times.user + times.system + times.children_user + times.children_system


def _peak_rss_bytes(pid: int) -> int:
    # VmHWM: the kernel's own peak resident set of the process, not a sampled value.
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


@dataclass
class Usage:
    """CPU and peak memory of process trees, sampled; each process keeps its last reading,
    so one that was killed still counts with what it had used."""

    cpu: dict[int, float] = field(default_factory=dict)
    peak: dict[int, int] = field(default_factory=dict)

    def sample(self, roots: Sequence[int]) -> None:
        for root in roots:
            with contextlib.suppress(psutil.Error, OSError):
                for process in _tree(root):
                    with contextlib.suppress(psutil.Error, OSError):
                        self.cpu[process.pid] = _cpu_seconds(process)
                        self.peak[process.pid] = _peak_rss_bytes(process.pid)

    @property
    def cpu_seconds(self) -> float:
        return sum(self.cpu.values())

    @property
    def peak_rss_bytes(self) -> int:
        return sum(self.peak.values())


def _servers_cpu(infra: Infrastructure) -> float:
    usage = Usage()
    roots = [p.pid for p in (infra.nats.process, infra.postgres.process) if p is not None]
    usage.sample(roots)
    return usage.cpu_seconds


# ---------------------------------------------------------------- the systems


@dataclass
class Run:
    """One system's run against one emulator."""

    work: Path
    infra: Infrastructure
    api_url: str
    recipients: int
    done: Path
    rate: float = ALLOWED  # the limit; above 30, Herald's broadcast allows paid broadcasts
    uid: str = ""  # Herald's broadcast


def _env(run: Run) -> dict[str, str]:
    return {
        **os.environ,
        "BENCH_NATS_URL": run.infra.nats_url,
        "BENCH_API_URL": run.api_url,
        "BENCH_TOKEN": TOKEN,
    }


async def _run_to_end(argv: list[str], env: dict[str, str]) -> None:
    process = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{argv[1]} failed:\n{output.decode(errors='replace')[-2000:]}")


async def _consumer_drained(nats_url: str, stream: str, durable: str) -> bool:
    client = await nats.connect(nats_url)
    try:
        info = await client.jetstream().consumer_info(stream, durable)
        return info.num_pending == 0 and info.num_ack_pending == 0
    finally:
        await client.close()


@dataclass(frozen=True)
class System:
    key: str
    label: str
    prepare: Callable[[Run], Awaitable[None]]  # queue the work as the design does
    command: Callable[[Run], list[str]]
    finished: Callable[[Run], Awaitable[bool]]
    cwd: Path | None = None
    env: Callable[[Run], dict[str, str]] = _env


async def _herald_prepare(run: Run) -> None:
    run.uid = await prepare_broadcast(
        run.infra, range(1, run.recipients + 1), rate=run.rate, paid=run.rate > ALLOWED
    )


async def _herald_finished(run: Run) -> bool:
    return await unsettled(run.infra.dsn, run.uid) == 0


async def _nothing(run: Run) -> None:
    return None


async def _done_file(run: Run) -> bool:
    return run.done.exists()


async def _seed000_prepare(run: Run) -> None:
    await _run_to_end(
        [
            sys.executable,
            str(BENCH / "_seed000.py"),
            "--first",
            "1",
            "--count",
            str(run.recipients),
        ],
        _env(run),
    )


async def _seed000_finished(run: Run) -> bool:
    return await _consumer_drained(run.infra.nats_url, "taskiq_jetstream", "taskiq_durable")


async def _seed004_prepare(run: Run) -> None:
    await _run_to_end(
        [
            sys.executable,
            str(BENCH / "_seed004.py"),
            "enqueue",
            "--nats",
            run.infra.nats_url,
            "--first",
            "1",
            "--count",
            str(run.recipients),
        ],
        _env(run),
    )


def _systems(message_pause: float) -> list[System]:
    return [
        System(
            key="herald",
            label="Herald sender",
            prepare=_herald_prepare,
            command=lambda run: [str(BIN / "herald-sender")],
            finished=_herald_finished,
            env=lambda run: sender_env(run.infra, run.api_url),
        ),
        System(
            key="naive",
            label="naive aiogram loop",
            prepare=_nothing,
            command=lambda run: [
                sys.executable,
                str(BENCH / "_naive.py"),
                "--api",
                run.api_url,
                "--token",
                TOKEN,
                "--first",
                "1",
                "--count",
                str(run.recipients),
                "--done",
                str(run.done),
                "--rate",
                str(run.rate),
            ],
            finished=_done_file,
        ),
        System(
            key="seed000",
            label="seeds/000: taskiq-nats",
            prepare=_seed000_prepare,
            # taskiq's defaults but for per-task INFO log lines, which would only add cost.
            command=lambda run: (
                [str(BIN / "taskiq"), "worker", "_seed000:broker", "--log-level", "WARNING"]
            ),
            finished=_seed000_finished,
            cwd=BENCH,
        ),
        System(
            key="seed004",
            label="seeds/004: chunks of 100",
            prepare=_seed004_prepare,
            command=lambda run: [
                sys.executable,
                str(BENCH / "_seed004.py"),
                "work",
                "--nats",
                run.infra.nats_url,
                "--api",
                run.api_url,
                "--token",
                TOKEN,
                "--done",
                str(run.done),
                "--message-pause",
                str(message_pause),
            ],
            finished=_done_file,
        ),
    ]


# ---------------------------------------------------------------- running


@dataclass(frozen=True)
class Outcome:
    system: str
    kill: bool
    seen: RunFigures
    cpu_seconds: float
    peak_rss_bytes: int
    servers_cpu_seconds: float
    wall_seconds: float
    killed_at: int | None
    startup_cpu_seconds: float  # used before the first message was accepted
    ledger: dict[str, int]  # Herald's rows per state at the end


async def _sent(api_url: str) -> int:
    async with EmulatorClient(api_url) as client:
        return (await client.summary(token=TOKEN)).total


def _kill_group(process: ManagedProcess) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while process.alive and time.monotonic() < deadline:
        time.sleep(0.05)


async def run_system(
    system: System,
    *,
    work: Path,
    infra: Infrastructure,
    recipients: int,
    kill: bool,
    rate: float = ALLOWED,
) -> Outcome:
    name = f"{system.key}-{'kill' if kill else 'clean'}-{time.monotonic_ns()}"
    # Above the free limit, the paid one: allow_paid_broadcast sends at `rate`.
    limits = FREE_LIMIT if rate == ALLOWED else [*FREE_LIMIT, "--paid-rate", f"{rate:g}"]
    with emulator(work, name, limits) as api_url:
        run = Run(work, infra, api_url, recipients, done=work / f"{name}.done", rate=rate)
        await system.prepare(run)
        usage = Usage()
        servers_before = _servers_cpu(infra)
        started = time.monotonic()
        deadline = started + 120 + recipients / 2

        def start(attempt: int) -> ManagedProcess:
            return ManagedProcess(
                system.key,
                system.command(run),
                work / f"{name}-{attempt}.log",
                env=system.env(run),
                cwd=system.cwd,
            ).start()

        process = start(0)
        killed_at: int | None = None
        startup_cpu: float | None = None
        try:
            while True:
                usage.sample([process.pid])
                if startup_cpu is None and await _sent(api_url) > 0:
                    startup_cpu = usage.cpu_seconds
                if await system.finished(run):
                    break
                if not process.alive:
                    raise RuntimeError(f"{system.key} exited early:\n{process.tail()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{system.key} did not finish in time:\n{process.tail()}")
                if kill and killed_at is None:
                    sent = await _sent(api_url)
                    if sent >= recipients // 2:
                        _kill_group(process)
                        killed_at = sent
                        process = start(1)
                await asyncio.sleep(SAMPLE_SECONDS)
            usage.sample([process.pid])
        finally:
            process.stop()
        wall = time.monotonic() - started
        servers_after = _servers_cpu(infra)
        seen = await figures(api_url)
        if seen.messages == 0:
            raise RuntimeError(f"{system.key} sent nothing:\n{process.tail()}")
        ledger = await ledger_states(infra.dsn, run.uid) if run.uid else {}
    return Outcome(
        system=system.key,
        kill=kill,
        seen=seen,
        cpu_seconds=usage.cpu_seconds,
        peak_rss_bytes=usage.peak_rss_bytes,
        servers_cpu_seconds=servers_after - servers_before,
        wall_seconds=wall,
        killed_at=killed_at,
        startup_cpu_seconds=startup_cpu or 0.0,
        ledger=ledger,
    )


# ---------------------------------------------------------------- reporting


@dataclass(frozen=True)
class Row:
    label: str
    rate: float  # delivered msg/s in the clean run
    too_many: float  # 429 answers in the clean run
    cpu_per_1000: float
    sending_cpu_per_1000: float  # without the CPU spent before the first message
    servers_cpu_per_1000: float
    peak_mb: float
    twice: float  # chats messaged twice after one kill -9
    missed: float  # chats never messaged after one kill -9


def _row(label: str, recipients: int, clean: list[Outcome], killed: list[Outcome]) -> Row:
    def median(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")

    return Row(
        label=label,
        rate=median([o.seen.msg_per_s for o in clean]),
        too_many=median([o.seen.too_many_requests for o in clean]),
        cpu_per_1000=median([o.cpu_seconds / o.seen.messages * 1000 for o in clean]),
        sending_cpu_per_1000=median(
            [(o.cpu_seconds - o.startup_cpu_seconds) / o.seen.messages * 1000 for o in clean]
        ),
        servers_cpu_per_1000=median(
            [o.servers_cpu_seconds / o.seen.messages * 1000 for o in clean]
        ),
        peak_mb=median([o.peak_rss_bytes / 2**20 for o in clean]),
        twice=median([o.seen.chats_messaged_twice for o in killed]),
        missed=median([recipients - o.seen.chats for o in killed]),
    )


def _times(value: float, base: float) -> str:
    if base == 0:
        return "—" if value == 0 else "∞"
    return f"{value / base:.2f}×"


def _whole(value: float) -> str:
    return "not run" if math.isnan(value) else f"{value:.0f}"


def markdown(rows: list[Row], *, recipients: int, rate: float = ALLOWED) -> str:
    herald = rows[0]
    lines = [
        f"| system ({recipients} recipients) | delivered/s | of the {rate:g}/s limit "
        "| rate vs Herald "
        "| 429s | CPU s per 1,000 msgs | CPU vs Herald | same, start-up excluded | vs Herald "
        "| NATS+PG CPU s per 1,000 | peak RSS MB | RSS vs Herald "
        "| chats messaged twice after kill -9 | chats never messaged after kill -9 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row.label} | {row.rate:.1f} | {row.rate / rate:.3f} "
            f"| {_times(row.rate, herald.rate)} | {row.too_many:.0f} "
            f"| {row.cpu_per_1000:.2f} | {_times(row.cpu_per_1000, herald.cpu_per_1000)} "
            f"| {row.sending_cpu_per_1000:.2f} "
            f"| {_times(row.sending_cpu_per_1000, herald.sending_cpu_per_1000)} "
            f"| {row.servers_cpu_per_1000:.2f} | {row.peak_mb:.0f} "
            f"| {_times(row.peak_mb, herald.peak_mb)} "
            f"| {_whole(row.twice)} | {_whole(row.missed)} |"
        )
    return "\n".join(lines)


def _describe(outcome: Outcome) -> str:
    seen = outcome.seen
    return (
        f"{outcome.system:8} {'kill ' if outcome.kill else 'clean'} "
        f"sent={seen.messages} chats={seen.chats} span={seen.seconds}s "
        f"rate={seen.msg_per_s:.1f}/s max/s={seen.max_in_any_second} "
        f"429s={seen.too_many_requests} twice={seen.chats_messaged_twice} "
        f"cpu={outcome.cpu_seconds:.1f}s (start-up {outcome.startup_cpu_seconds:.1f}s) "
        f"rss={outcome.peak_rss_bytes / 2**20:.0f}MB "
        f"servers_cpu={outcome.servers_cpu_seconds:.1f}s wall={outcome.wall_seconds:.0f}s"
        + (f" killed_after={outcome.killed_at}" if outcome.killed_at is not None else "")
        + (f" ledger={outcome.ledger}" if outcome.ledger else "")
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=1500, help="chats each system sends")
    parser.add_argument("--rounds", type=int, default=1, help="repeat, report medians")
    parser.add_argument(
        "--systems",
        default="herald,naive,seed000,seed004",
        help="comma-separated subset, in running order; herald first for the ratios",
    )
    parser.add_argument("--no-kill", action="store_true", help="skip the kill -9 runs")
    parser.add_argument(
        "--rate",
        type=float,
        default=ALLOWED,
        help="msg/s each system paces to; above 30 the emulator's paid limit, and Herald's "
        "broadcast allows paid broadcasts (the seeds' designs have no such setting)",
    )
    parser.add_argument(
        "--seed004-message-pause",
        type=float,
        default=0.0,
        help="seconds between messages within a chunk (the seed itself: 1)",
    )
    args = parser.parse_args()
    if args.recipients < 2:
        parser.error("--recipients must be at least 2")
    catalogue = {system.key: system for system in _systems(args.seed004_message_pause)}
    wanted = [key.strip() for key in args.systems.split(",") if key.strip()]
    unknown = sorted(set(wanted) - set(catalogue))
    if unknown:
        parser.error(f"unknown systems {unknown}; choose from {sorted(catalogue)}")
    systems = [catalogue[key] for key in wanted]

    print(
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start",
        flush=True,
    )
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="herald-bench-") as tmp:
        work = Path(tmp)
        async with infrastructure(work) as infra:
            for _ in range(args.rounds):
                for kill in [False] if args.no_kill else [False, True]:
                    for system in systems:
                        outcome = await run_system(
                            system,
                            work=work,
                            infra=infra,
                            recipients=args.recipients,
                            kill=kill,
                            rate=args.rate,
                        )
                        outcomes.append(outcome)
                        print(_describe(outcome), flush=True)
    rows = [
        _row(
            system.label,
            args.recipients,
            [o for o in outcomes if o.system == system.key and not o.kill],
            [o for o in outcomes if o.system == system.key and o.kill],
        )
        for system in systems
    ]
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end\n")
    print(markdown(rows, recipients=args.recipients, rate=args.rate))


if __name__ == "__main__":
    asyncio.run(main())
