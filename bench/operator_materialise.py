"""Benchmark: how long the operator takes to materialise and queue a large audience, and its
peak memory. Not a test; prints figures.

    .venv/bin/python bench/operator_materialise.py                 # 100k and 1M, batch 100
    .venv/bin/python bench/operator_materialise.py --batch-sizes 50 100 500 --sizes 1000000

Everything is real and local: kube-apiserver + etcd, nats-server, PostgreSQL, and the
`herald-operator` console script as a child process. For each run a Broadcast selecting all
active subscribers is applied; the clock stops when the bookkeeping row says every ledger
row is published. Peak RSS is the operator process' VmHWM from /proc. Then the queries of
one status refresh (`herald.operator.ledgers.ledger_facts`: the counts per state, the
clicks, what is left to recall or correct) are timed against that ledger, five times, as the
operator runs them; with `--delivered` that share of the rows is first marked delivered, as
midway through sending.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import nats

from herald.core import subjects
from herald.core.migrating import apply_migrations
from herald.core.permissions import Component
from herald.dev import controlplane
from herald.dev.keys import token_keys
from herald.dev.kubectl import Kubectl
from herald.dev.nats import NatsAccess, NatsServer
from herald.dev.postgres import PostgresCluster
from herald.dev.processes import ManagedProcess, emulator, wait_until
from herald.operator.ledgers import ledger_facts


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def seed(dsn: str, count: int) -> None:
    db = await asyncpg.connect(dsn)
    try:
        await db.execute("TRUNCATE subscribers")
        await db.execute(
            "INSERT INTO subscribers (bot_id, chat_id, first_name, language_code, tags) "
            "SELECT '123456', g, 'user' || g, (ARRAY['en','ru','de'])[1 + g % 3], "
            "ARRAY['t' || g % 7] FROM generate_series(1, $1::bigint) g",
            count,
        )
        await db.execute("ANALYZE subscribers")
    finally:
        await db.close()


async def run_once(
    *,
    plane: controlplane.ControlPlane,
    nats_access: NatsAccess,
    dsn: str,
    size: int,
    batch: int,
    work: Path,
    delivered: float,
    telegram: str,
) -> tuple[float, float, float, int, list[float]]:
    namespace = f"bench-{size}-{batch}-{int(time.time())}"
    kubectl = Kubectl(plane.kubeconfig)
    kubectl("create", "namespace", namespace)
    kubectl = kubectl.in_namespace(namespace)
    kubectl("create", "secret", "generic", "bot", "--from-literal=token=123456:bench")
    env = dict(os.environ)
    env.update(nats_access.env(Component.OPERATOR))
    env.update(
        KUBECONFIG=str(plane.kubeconfig),
        HERALD_DATABASE_URL=dsn,
        HERALD_OPERATOR_NAMESPACES=json.dumps([namespace]),
        HERALD_OPERATOR_BATCH_SIZE=str(batch),
        HERALD_OPERATOR_LIVENESS_PORT="0",
        HERALD_OPERATOR_METRICS_PORT="0",
        HERALD_SENDER_NAMESPACE=namespace,
        HERALD_TOKEN_KEYS=token_keys(),
        # The operator checks the bot's token with getMe before it materialises anything.
        HERALD_TELEGRAM_API_URL=telegram,
    )
    operator = ManagedProcess(
        "herald-operator",
        [str(Path(sys.executable).parent / "herald-operator")],
        work / f"operator-{namespace}.log",
        env,
    ).start()
    try:
        wait_until(
            lambda: "Initial authentication has finished" in operator.log_path.read_text(),
            timeout=30,
            what="operator start",
            process=operator,
        )
        manifest = {
            "apiVersion": "herald.dev/v1alpha1",
            "kind": "Broadcast",
            "metadata": {"name": "bench"},
            "spec": {
                "botRef": {"name": "bot"},
                "content": {"text": "hello {first_name}"},
                "audience": {"subscribers": {}},
            },
        }
        started = time.monotonic()
        kubectl("apply", "-f", "-", input=json.dumps(manifest))
        uid = kubectl("get", "broadcast", "bench", "-o", "jsonpath={.metadata.uid}").stdout
        db = await asyncpg.connect(dsn)
        try:
            materialised = queued = 0.0
            while True:
                row = await db.fetchrow(
                    "SELECT materialised_at, published_at FROM broadcasts WHERE uid = $1", uid
                )
                now = time.monotonic() - started
                if row is not None and row["materialised_at"] is not None and not materialised:
                    materialised = now
                if row is not None and row["published_at"] is not None:
                    queued = now
                    break
                if not operator.alive:
                    raise RuntimeError(operator.tail())
                await asyncio.sleep(0.05)
        finally:
            await db.close()
        rss = peak_rss_mb(operator.pid)
        # Stopped before the stream is purged: a running operator would queue the ledger
        # again, and the refreshes below would be timed beside it.
        operator.stop()
        client = await nats.connect(nats_access.url)
        js = client.jetstream()
        info = await js.stream_info(
            subjects.WORK_STREAM, subjects_filter=subjects.work_subject(uid)
        )
        messages = info.state.messages
        await js.purge_stream(subjects.WORK_STREAM)
        await client.close()
        refreshes = await time_refresh(dsn, uid, delivered)
        return materialised, queued, rss, messages, refreshes
    finally:
        operator.stop()


async def time_refresh(dsn: str, uid: str, delivered: float) -> list[float]:
    db = await asyncpg.connect(dsn)
    try:
        if delivered:
            await db.execute(
                "UPDATE deliveries SET state = 'delivered', finished_at = now(), message_id = 1 "
                "WHERE broadcast_uid = $1 AND chat_id % 1000 < $2",
                uid,
                int(delivered * 1000),
            )
            await db.execute("VACUUM ANALYZE deliveries")
        times = []
        for _ in range(5):
            started = time.monotonic()
            facts = await ledger_facts(db, uid)
            times.append(time.monotonic() - started)
            assert facts is not None and sum(facts.counts.values()) == facts.total
        return times
    finally:
        await db.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[100])
    parser.add_argument(
        "--delivered", type=float, default=0.0, help="share marked delivered before the refresh"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with (
            controlplane.running(work / "cp") as plane,
            NatsServer(work / "nats") as nats_server,
            PostgresCluster(work / "pg") as postgres,
            emulator(work / "emulator.log") as (telegram, _),
        ):
            Kubectl(plane.kubeconfig).install_crds()
            admin = await asyncpg.connect(postgres.dsn())
            await admin.execute("CREATE DATABASE bench")
            await admin.close()
            dsn = postgres.dsn("bench")
            db = await asyncpg.connect(dsn)
            await apply_migrations(db)
            await db.close()
            print(
                f"{'recipients':>10} {'batch':>5} {'materialised':>12} {'queued':>8} "
                f"{'messages':>8} {'peak RSS':>9} {'status refresh (5 runs)':>24}"
            )
            for size in args.sizes:
                await seed(dsn, size)
                for batch in args.batch_sizes:
                    materialised, queued, rss, messages, refreshes = await run_once(
                        plane=plane,
                        nats_access=nats_server.access,
                        dsn=dsn,
                        size=size,
                        batch=batch,
                        work=work,
                        delivered=args.delivered,
                        telegram=telegram,
                    )
                    print(
                        f"{size:>10} {batch:>5} {materialised:>11.1f}s {queued:>7.1f}s "
                        f"{messages:>8} {rss:>7.0f}MB  " + " ".join(f"{t:.2f}s" for t in refreshes),
                        flush=True,
                    )


if __name__ == "__main__":
    asyncio.run(main())
