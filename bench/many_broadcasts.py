"""Benchmark: many Broadcasts applied in one `kubectl apply` of a List, as Argo CD or Flux
applies a folder. Not a test; prints figures.

    .venv/bin/python bench/many_broadcasts.py [--count 200] [--completed 1000]

Run 1: ``--count`` Broadcasts over three bots (30 msg/s each, Telegram's free limit, 80 ms
per request), 10-100 explicit chats each, no chat in two. Printed: time from the apply to
every one Complete against the ideal (each bot's recipients over its limit; the bots run
side by side, so the slowest bot's), the operator's peak RSS and CPU, and the p50/p99/max of
"spec change accepted -> status reflects it": while they run, a Broadcast is paused and
resumed every second, and the time until its status shows the new observedGeneration with
Paused True (then False) is taken. Checked, not only printed: no chat messaged twice, each
bot at most its limit in any second, no 429, every status exact.

Run 2: the same, in a fresh namespace where ``--completed`` finished Broadcasts (one chat
each, on a fourth bot) already exist, to show that finished Broadcasts cost the operator
nothing: the p99 should not move.

Everything is real: kube-apiserver + etcd, nats-server, PostgreSQL, the emulator, the
`herald-operator` process and `herald-sender` processes run by the dev supervisor, on the
operator's default timer and refresh periods.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pipeline  # the script beside this one: its system() runs each run's Herald
from kubernetes import client, config

from herald.dev import controlplane
from herald.dev.fleets import Bot, Fleet, fleet, wait_all_complete
from herald.dev.kubectl import Kubectl
from herald.dev.nats import NatsAccess, NatsServer
from herald.dev.postgres import PostgresCluster
from herald.dev.systems import BOT_SECRET, TOKEN, LocalSystem

BOTS = (
    Bot(BOT_SECRET, TOKEN),
    Bot("bot-b", "223456:fleet-b"),
    Bot("bot-c", "323456:fleet-c"),
)
IDLE_BOT = Bot("bot-idle", "423456:fleet-idle")
# The operator's own defaults, as a production install runs: the test harness's quicker
# timer would make the operator busier than it is.
DEFAULTS = {"HERALD_OPERATOR_TIMER_SECONDS": "2", "HERALD_OPERATOR_REFRESH_SECONDS": "5"}


@asynccontextmanager
async def system(
    workdir: Path, plane: controlplane.ControlPlane, nats: NatsAccess, pg: PostgresCluster
) -> AsyncIterator[LocalSystem]:
    settings = {**DEFAULTS, "HERALD_SCALING_MAX_REPLICAS": "4"}
    flags = ["--latency-ms=80"]
    async with pipeline.system(
        workdir, plane, nats, pg, emulator_flags=flags, settings=settings
    ) as running:
        yield running


def _proc(pid: int) -> tuple[float, float]:
    """(peak RSS in MB, CPU seconds) of a process, from /proc."""
    peak = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) / 1024
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = 100  # os.sysconf("SC_CLK_TCK") on Linux
    return peak, (int(fields[11]) + int(fields[12])) / ticks


class Probe:
    """Pause and resume running Broadcasts; time until the status reflects each change."""

    def __init__(self, herald: LocalSystem, kubeconfig: Path, names: list[str]) -> None:
        self._api = client.CustomObjectsApi(config.new_client_from_config(str(kubeconfig)))  # type: ignore[no-untyped-call]
        self._namespace = herald.kubectl.namespace or "default"
        self._names = names
        self.samples: list[float] = []

    def _get(self, name: str) -> dict[str, Any]:
        body: dict[str, Any] = self._api.get_namespaced_custom_object(
            "herald.dev", "v1alpha1", self._namespace, "broadcasts", name
        )
        return body

    def _patch(self, name: str, paused: bool) -> int:
        body = self._api.patch_namespaced_custom_object(
            "herald.dev", "v1alpha1", self._namespace, "broadcasts", name,
            {"spec": {"paused": paused}},
            _content_type="application/merge-patch+json",
        )  # fmt: skip
        return int(body["metadata"]["generation"])

    def _reflected(self, name: str, generation: int, paused: bool) -> bool:
        status = self._get(name).get("status") or {}
        if int(status.get("observedGeneration") or 0) < generation:
            return False
        for condition in status.get("conditions", []):
            if condition["type"] == "Paused":
                return (condition["status"] == "True") == paused or (
                    # A broadcast that completed meanwhile is no longer paused, rightly.
                    paused and status.get("phase") == "Completed"
                )
        return False

    def change(self, name: str, paused: bool) -> float:
        generation = self._patch(name, paused)
        accepted = time.monotonic()
        while not self._reflected(name, generation, paused):
            if time.monotonic() - accepted > 120:
                raise RuntimeError(f"{name}: paused={paused} not reflected in 120 s")
            time.sleep(0.1)
        return time.monotonic() - accepted

    async def run(self, stop: asyncio.Event) -> None:
        rng = random.Random(9)
        while not stop.is_set():
            name = rng.choice(self._names)
            for paused in (True, False):
                self.samples.append(await asyncio.to_thread(self.change, name, paused))
            await asyncio.sleep(1.0)


async def run(herald: LocalSystem, kubeconfig: Path, planned: Fleet, *, label: str) -> list[str]:
    for bot in planned.bots:
        if bot.secret != BOT_SECRET:  # the harness made that one
            herald.create_bot_secret(bot.secret, bot.token)
    names = [b.name for b in planned.broadcasts]
    probe = Probe(herald, kubeconfig, names)
    stop = asyncio.Event()
    _, cpu_before = _proc(herald.operator.pid)
    started = time.monotonic()
    applied = time.time()
    await asyncio.to_thread(
        herald.kubectl, "apply", "-f", "-", input=planned.list_manifest(), timeout=300
    )
    probing = asyncio.create_task(probe.run(stop))
    ideal = planned.ideal_seconds()
    statuses = await wait_all_complete(
        herald.kubectl, names, within=ideal * 4 + 300, fleet=planned.broadcasts[0].fleet
    )
    elapsed = time.monotonic() - started
    stop.set()
    await probing
    peak, cpu_after = _proc(herald.operator.pid)

    problems: list[str] = []
    timeline: list[str] = []
    async with herald.emulator() as emulator:
        for bot in planned.bots:
            summary = await emulator.summary(token=bot.token)
            sent = sorted(m.wall.timestamp() for m in await emulator.messages(token=bot.token))
            if len(sent) > 1:
                rate = (len(sent) - 1) / (sent[-1] - sent[0])
                timeline.append(
                    f"{bot.secret} first +{sent[0] - applied:.1f}s last +{sent[-1] - applied:.1f}s "
                    f"{rate:.1f}/s"
                )
            wanted = planned.recipients(bot)
            if summary.total != wanted:
                problems.append(f"{bot.secret}: {summary.total} sent, {wanted} wanted")
            if summary.duplicates.get(bot.token):
                problems.append(f"{bot.secret}: chats messaged twice")
            if summary.max_per_second.get(bot.token, 0) > bot.messages_per_second:
                problems.append(f"{bot.secret}: {summary.max_per_second[bot.token]} in a second")
            if summary.too_many_requests.get(bot.token, 0):
                problems.append(f"{bot.secret}: {summary.too_many_requests[bot.token]} 429s")
    for b in planned.broadcasts:
        st = statuses[b.name]
        if (st.get("total"), st.get("delivered"), st.get("pending")) != (len(b.chat_ids),) * 2 + (
            0,
        ):
            problems.append(f"{b.name}: status {json.dumps(st)[:120]}")
    samples = sorted(probe.samples)
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))] if samples else float("nan")
    recipients = sum(planned.recipients(bot) for bot in planned.bots)
    return [
        f"{label}: {len(names)} Broadcasts, {recipients} recipients over {len(planned.bots)} "
        f"bots: all Complete {elapsed:.1f}s after the apply; ideal {ideal:.1f}s; "
        f"ratio {ideal / elapsed:.3f}",
        f"{label}: per bot: {'; '.join(timeline)}",
        f"{label}: operator peak RSS {peak:.0f} MB, CPU {cpu_after - cpu_before:.1f}s",
        f"{label}: spec change -> status reflects it, {len(samples)} samples: "
        f"p50 {statistics.median(samples):.2f}s, p99 {p99:.2f}s, max {samples[-1]:.2f}s"
        if samples
        else f"{label}: no spec-change samples",
        f"{label}: checks: {'all hold' if not problems else '; '.join(problems[:10])}",
    ]


async def settle_completed(herald: LocalSystem, count: int) -> str:
    """``count`` one-chat Broadcasts on the idle bot, applied and left Complete."""
    herald.create_bot_secret(IDLE_BOT.secret, IDLE_BOT.token)
    idle = fleet(
        count, bots=[IDLE_BOT], smallest=1, largest=1, prefix="done", first_chat=90_000_000
    )
    started = time.monotonic()
    for start in range(0, count, 250):  # a List of 1,000 is a large request; send it in four
        chunk = Fleet(idle.bots, idle.broadcasts[start : start + 250])
        await asyncio.to_thread(
            herald.kubectl, "apply", "-f", "-", input=chunk.list_manifest(), timeout=300
        )
    await wait_all_complete(
        herald.kubectl,
        [b.name for b in idle.broadcasts],
        within=count / 30 * 4 + 300,
        poll=3,
        fleet="done",
    )
    return f"{count} finished Broadcasts in place after {time.monotonic() - started:.0f}s"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200, help="Broadcasts applied at once")
    parser.add_argument(
        "--completed", type=int, default=1000, help="finished Broadcasts in run 2 (0: no run 2)"
    )
    parser.add_argument("--logs", type=Path, help="keep every process's log in this folder")
    args = parser.parse_args()
    planned = fleet(args.count, bots=BOTS)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.logs or Path(tmp)
        with (
            controlplane.running(workdir / "cp", say=print) as plane,
            NatsServer(workdir / "nats") as nats_server,
            PostgresCluster(workdir / "pg") as pg,
        ):
            Kubectl(plane.kubeconfig).install_crds()
            lines: list[str] = []

            def report(new: list[str]) -> None:
                for line in new:
                    print(line, flush=True)
                lines.extend(new)

            async with system(workdir, plane, nats_server.access, pg) as herald:
                report(await run(herald, plane.kubeconfig, planned, label="run 1"))
            if args.completed:
                async with system(workdir, plane, nats_server.access, pg) as herald:
                    report([await settle_completed(herald, args.completed)])
                    report(
                        await run(
                            herald,
                            plane.kubeconfig,
                            planned,
                            label=f"run 2, {args.completed} finished beside",
                        )
                    )
            print("\n".join(["", "Figures:", *lines]))


if __name__ == "__main__":
    asyncio.run(main())
