"""``kubectl broadcast ledger`` as users run it (the real kubectl finds the plugin on PATH)
against herald-api on real parts, with the kubeconfig of a reader's service account token."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from herald.core.deliveries import LEDGER_COLUMNS, LedgerRow
from herald.dev.kubectl import find_kubectl
from herald.dev.processes import free_port

from .conftest import token_kubeconfig
from .test_ledger import ROWS, broadcast, ledger

Herald = Any
Cluster = Any

BIN = Path(sys.executable).parent


async def plugin(
    kubeconfig: Path, namespace: str, *args: str, api_url: str | None
) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("KUBECONFIG", "HERALD_"))},
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    if api_url is not None:
        env["HERALD_API_URL"] = api_url
    argv = [
        str(find_kubectl()),
        "broadcast",
        "ledger",
        *args,
        f"--kubeconfig={kubeconfig}",
        f"--namespace={namespace}",
    ]
    return await asyncio.to_thread(
        subprocess.run, argv, capture_output=True, text=True, timeout=60, check=False, env=env
    )


async def reader(cluster: Cluster, herald: Herald, name: str, tmp_path: Path, **grant: Any) -> Path:
    token = await cluster.ledger_reader(name, **grant)
    admin = Path(cluster.admin.kubeconfig)
    return token_kubeconfig(admin, token, tmp_path / f"{name}.kubeconfig")


async def test_the_plugin_prints_the_ledger_as_a_table_json_lines_or_csv(
    herald: Herald, cluster: Cluster, tmp_path: Path
) -> None:
    uid = await broadcast(cluster, "black-friday")
    await ledger(herald, uid)
    kubeconfig = await reader(cluster, herald, "analyst", tmp_path, broadcasts=["black-friday"])
    ns = cluster.namespace
    async with herald.running() as api:
        table = await plugin(kubeconfig, ns, "black-friday", api_url=api.url)
        as_json = await plugin(kubeconfig, ns, "black-friday", "-o", "json", api_url=api.url)
        as_csv = await plugin(kubeconfig, ns, "black-friday", "-o", "csv", api_url=api.url)
        chosen = await plugin(
            kubeconfig,
            ns,
            "black-friday",
            "--state=failed",
            "--state=uncertain",
            "-o",
            "json",
            api_url=api.url,
        )
    assert table.returncode == 0, table.stderr
    header, *lines = table.stdout.splitlines()
    assert header.split() == ["CHAT", "ID", "STATE", "MESSAGE", "ID", "FINISHED", "REASON"]
    assert [line.split()[:2] for line in lines] == [
        [str(chat_id), state] for chat_id, state, *_ in sorted(ROWS)
    ]
    assert lines[2].endswith("Bad Request: chat not found")

    assert as_json.returncode == 0, as_json.stderr
    rows = [LedgerRow.model_validate_json(line) for line in as_json.stdout.splitlines()]
    assert [(r.chat_id, r.state, r.reason, r.message_id) for r in rows] == sorted(ROWS)

    assert as_csv.returncode == 0, as_csv.stderr
    parsed = list(csv.reader(io.StringIO(as_csv.stdout)))
    assert tuple(parsed[0]) == LEDGER_COLUMNS
    assert len(parsed) == len(ROWS) + 1

    assert chosen.returncode == 0, chosen.stderr
    assert [json.loads(line)["chatId"] for line in chosen.stdout.splitlines()] == [102, 104]


async def test_the_plugin_says_clearly_when_refused_missing_or_unreachable(
    herald: Herald, cluster: Cluster, tmp_path: Path
) -> None:
    uid = await broadcast(cluster, "black-friday")
    await ledger(herald, uid)
    nobody = await reader(cluster, herald, "nobody", tmp_path, broadcasts=None)
    analyst = await reader(
        cluster, herald, "analyst", tmp_path, broadcasts=["black-friday", "gone"]
    )
    ns = cluster.namespace
    async with herald.running() as api:
        refused = await plugin(nobody, ns, "black-friday", api_url=api.url)
        missing = await plugin(analyst, ns, "gone", api_url=api.url)
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert "Error: forbidden: system:serviceaccount:" in refused.stderr
    assert "may not get broadcasts/deliveries.herald.dev" in refused.stderr
    assert missing.returncode == 1
    assert f'no Broadcast "gone" in namespace "{ns}"' in missing.stderr

    nowhere = f"http://127.0.0.1:{free_port()}"
    unreachable = await plugin(analyst, ns, "black-friday", api_url=nowhere)
    assert unreachable.returncode == 1
    assert f"cannot reach herald-api at {nowhere}" in unreachable.stderr
    assert "HERALD_API_URL" in unreachable.stderr


async def test_without_a_url_the_plugin_goes_to_herald_apis_service(
    herald: Herald, cluster: Cluster, tmp_path: Path
) -> None:
    """The Service's cluster DNS name resolves only in a pod: outside, the error names it."""
    installed = await cluster.other_namespace()
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "herald-api",
            "labels": {"app.kubernetes.io/part-of": "herald", "app.kubernetes.io/component": "api"},
        },
        "spec": {"ports": [{"name": "http", "port": 8080, "targetPort": "http"}]},
    }
    await cluster.k("apply", "-f", "-", input=json.dumps(service), namespace=installed)
    admin = Path(cluster.admin.kubeconfig)
    found = await plugin(
        admin, cluster.namespace, "x", f"--api-namespace={installed}", "--token=t", api_url=None
    )
    assert found.returncode == 1
    assert f"cannot reach herald-api at http://herald-api.{installed}.svc:8080" in found.stderr
    empty = await plugin(
        admin, cluster.namespace, "x", "--api-namespace=default", "--token=t", api_url=None
    )
    assert empty.returncode == 1
    assert 'no herald-api Service in namespace "default"' in empty.stderr
