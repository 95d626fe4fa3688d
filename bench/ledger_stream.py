"""Benchmark: a Broadcast's ledger of a million rows streamed through herald-api to
``kubectl broadcast ledger``. Not a test; prints figures.

    .venv/bin/python bench/ledger_stream.py [--rows 1000000] [--output json csv]

For each output form: rows per second from the plugin's start to its exit (the rows counted
as they arrive on its stdout), the peak RSS of the plugin process (its own, from wait4) and
of the herald-api process (VmHWM before and after the stream): bounded memory on both sides
means neither grows with the rows.

Everything is real: kube-apiserver + etcd (TokenReview, SubjectAccessReview, the Broadcast),
nats-server, PostgreSQL, the operator and a herald-api process; the ledger rows are written
by SQL under the Broadcast's uid (a Broadcast scheduled next year, so nothing sends).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml
from pipeline import system

from herald.dev import controlplane
from herald.dev.kubectl import Kubectl
from herald.dev.nats import NatsServer
from herald.dev.postgres import PostgresCluster
from herald.dev.systems import LocalSystem

PLUGIN = Path(sys.executable).parent / "kubectl-broadcast"
NAME = "big-ledger"


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set so far (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def reader_token(herald: LocalSystem) -> str:
    role = "analyst-ledger"
    manifests = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "analyst"}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": role},
            "rules": [
                {
                    "apiGroups": ["herald.dev"],
                    "resources": ["broadcasts/deliveries"],
                    "resourceNames": [NAME],
                    "verbs": ["get"],
                }
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": role},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": "analyst"}],
        },
    ]
    herald.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(manifests))
    return herald.kubectl("create", "token", "analyst").stdout.strip()


async def fill(herald: LocalSystem, rows: int) -> None:
    herald.apply(
        NAME,
        {
            "content": {"text": "A ledger to read"},
            "audience": {"chatIds": [1]},
            "schedule": {"startAt": "2099-01-01T00:00:00Z"},
        },
    )
    uid = uuid.UUID(herald.get(NAME)["metadata"]["uid"])
    # Rows as a finished broadcast leaves them: mostly delivered, some failed and blocked.
    await herald.sql(
        """
        INSERT INTO deliveries (broadcast_uid, chat_id, state, reason, message_id, attempts,
                                claimed_at, finished_at)
        SELECT $1, 100000000 + g,
               CASE WHEN g % 50 = 0 THEN 'failed' WHEN g % 20 = 0 THEN 'blocked'
                    ELSE 'delivered' END,
               CASE WHEN g % 50 = 0 THEN 'Bad Request: chat not found'
                    WHEN g % 20 = 0 THEN 'Forbidden: bot was blocked by the user' END,
               CASE WHEN g % 20 <> 0 THEN g END, 1, now(), now()
        FROM generate_series(1, $2) AS g
        ON CONFLICT DO NOTHING
        """,
        uid,
        rows,
    )
    await herald.sql("ANALYZE deliveries")


def stream_once(herald: LocalSystem, token: str, output: str) -> tuple[int, float, float]:
    """(rows, seconds, the plugin's peak RSS in MiB) of one run of the plugin."""
    assert herald.kubectl.namespace is not None
    env = {**os.environ, "HERALD_API_URL": herald.api_urls[0], "HERALD_API_TOKEN": token}
    argv = [
        str(PLUGIN),
        "ledger",
        NAME,
        f"--output={output}",
        f"--kubeconfig={herald.kubectl.kubeconfig}",
        f"--namespace={herald.kubectl.namespace}",
    ]
    started = time.monotonic()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, env=env)
    assert process.stdout is not None
    lines = 0
    while chunk := process.stdout.read(1 << 16):
        lines += chunk.count(b"\n")
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.monotonic() - started
    if process.returncode != 0:
        raise RuntimeError(f"the plugin exited {process.returncode}")
    rows = lines - (1 if output == "csv" else 0)
    return rows, seconds, usage.ru_maxrss / 1024


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--output", nargs="+", default=["json", "csv"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        with (
            controlplane.running(workdir / "cp", say=print) as plane,
            NatsServer(workdir / "nats") as nats_server,
            PostgresCluster(workdir / "pg") as pg,
        ):
            Kubectl(plane.kubeconfig).install_crds()
            async with system(
                workdir, plane, nats_server.access, pg, emulator_flags=[], settings={}, apis=1
            ) as herald:
                await fill(herald, args.rows)
                token = reader_token(herald)
                api_pid = herald.apis[0].pid
                lines = []
                for output in args.output:
                    before = peak_rss_mib(api_pid)
                    rows, seconds, client = stream_once(herald, token, output)
                    after = peak_rss_mib(api_pid)
                    if rows != args.rows:
                        raise RuntimeError(f"{rows} rows arrived of {args.rows}")
                    line = (
                        f"-o {output}: {rows:,} rows in {seconds:.1f} s = {rows / seconds:,.0f} "
                        f"rows/s; peak RSS: plugin {client:.0f} MiB, herald-api "
                        f"{before:.0f} -> {after:.0f} MiB"
                    )
                    print(line, flush=True)
                    lines.append(line)
                print("\n".join(["", "Figures:", *lines]))


if __name__ == "__main__":
    asyncio.run(main())
