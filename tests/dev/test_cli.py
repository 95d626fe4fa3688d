"""`herald dev up/status/down` end to end: the examples apply and nothing is left running."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from herald.dev import processes
from herald.dev.kubectl import Kubectl, repo_root
from herald.dev.stack import StackState


def herald(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "herald.dev.cli", *args],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def read_env(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = value.strip("'")
    return env


def test_up_apply_examples_status_down(tmp_path: Path) -> None:
    state_dir = tmp_path / "dev"
    started = herald("dev", "up", f"--state-dir={state_dir}")
    assert started.returncode == 0, started.stderr
    try:
        env = read_env(state_dir / "env")
        assert set(env) >= {
            "KUBECONFIG",
            "HERALD_NATS_URL",
            "HERALD_NATS_USER",
            "HERALD_NATS_PASSWORD",
            "HERALD_DATABASE_URL",
            "HERALD_TELEGRAM_API_URL",
            "HERALD_API_URL",
        }
        assert env["HERALD_NATS_USER"] == "admin"
        for component in ("operator", "sender", "bot", "api"):
            own = read_env(state_dir / f"env.{component}")
            assert own["HERALD_NATS_USER"] == f"herald-{component}"
            assert own["HERALD_NATS_PASSWORD"] not in {"", env["HERALD_NATS_PASSWORD"]}
            assert (state_dir / f"env.{component}").stat().st_mode & 0o077 == 0
        again = herald("dev", "up", f"--state-dir={state_dir}")
        assert again.returncode == 0
        assert "already running" in again.stdout

        status = herald("dev", "status", f"--state-dir={state_dir}")
        assert status.returncode == 0, status.stdout
        services = ("kube-apiserver", "etcd", "nats-server", "postgres", "telegram-emulator")
        for service in (*services, "herald-operator", "herald-bot", "herald-api"):
            assert f"{service}" in status.stdout
        api_up_while_running(env["HERALD_API_URL"], Path(env["KUBECONFIG"]))

        kubectl = Kubectl(Path(env["KUBECONFIG"]), "default")
        kubectl("apply", "-f", str(repo_root() / "examples"))
        table = kubectl("get", "bc").stdout.splitlines()
        assert table[0].split() == ["NAME", "PHASE", "PROGRESS", "DELIVERED", "FAILED", "AGE"]
        assert len(table) > 5
        assert env["HERALD_NATS_PASSWORD"] not in status.stdout
    finally:
        stopped = herald("dev", "down", f"--state-dir={state_dir}")
    assert stopped.returncode == 0
    state = StackState.load(state_dir / "state.json")
    assert state is None
    assert not list(state_dir.glob("env*"))
    status = herald("dev", "status", f"--state-dir={state_dir}")
    assert status.returncode == 1
    assert "not running" in status.stdout
    assert processes.http_get(f"{env['HERALD_API_URL']}/livez") == (0, ""), (
        "herald-api outlived down"
    )


def api_up_while_running(url: str, kubeconfig: Path) -> None:
    """herald-api answers at HERALD_API_URL, ready, with the HTTP contract's paths, and the
    stack's application may send with the dev Bot and with no other."""
    assert processes.http_get(f"{url}/readyz")[0] == 200
    code, text = processes.http_get(f"{url}/openapi.json")
    assert code == 200
    paths = json.loads(text)["paths"]
    assert "/v1/namespaces/{namespace}/bots/{bot}/messages" in paths
    # The message's id is a path parameter, whatever the server calls it.
    one = "/v1/namespaces/{namespace}/bots/{bot}/messages/{"
    assert any(path.startswith(one) and path.endswith("}") for path in paths), sorted(paths)
    admin = Kubectl(kubeconfig)
    assert may_send(admin, "create", "demo-bot")
    assert may_send(admin, "get", "demo-bot")
    assert not may_send(admin, "create", "other-bot")


def may_send(admin: Kubectl, verb: str, bot: str) -> bool:
    """The SubjectAccessReview herald-api asks for demo-app of the demo namespace (kubectl auth
    can-i cannot: it only names resources the API server serves)."""
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": "system:serviceaccount:demo:demo-app",
            "groups": ["system:serviceaccounts", "system:serviceaccounts:demo"],
            "resourceAttributes": {
                "verb": verb,
                "group": "herald.dev",
                "resource": "messages",
                "name": bot,
                "namespace": "demo",
            },
        },
    }
    answer = admin("create", "-f", "-", "-o", "json", input=json.dumps(review))
    allowed: bool = json.loads(answer.stdout)["status"].get("allowed", False)
    return allowed


def test_a_busy_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = herald("dev", "up", f"--state-dir={tmp_path}", f"--nats-port={port}")
    assert result.returncode == 1
    assert f"port {port} is already in use" in result.stderr
    assert "--nats-port" in result.stderr


def test_down_when_nothing_runs_is_fine(tmp_path: Path) -> None:
    result = herald("dev", "down", f"--state-dir={tmp_path}")
    assert result.returncode == 0
    assert "not running" in result.stdout


def test_the_stack_comes_back_after_down_with_its_data_kept(tmp_path: Path) -> None:
    """up → broadcast → down → up → broadcast on one state folder: the control plane's etcd
    data outlives `down`, with the sender Deployment's replicas as the operator left them."""
    state_dir = tmp_path / "dev"
    try:
        for run in ("first", "second"):
            started = herald("dev", "up", f"--state-dir={state_dir}")
            assert started.returncode == 0, (run, started.stdout[-2000:], started.stderr[-2000:])
            kubectl = Kubectl(Path(read_env(state_dir / "env")["KUBECONFIG"]), "default")
            examples = repo_root() / "examples"
            kubectl(
                "apply", "-f", str(examples / "bot-secret.yaml"), "-f", str(examples / "bot.yaml")
            )
            kubectl("apply", "-f", "-", input=json.dumps(_broadcast(f"{run}-run")))
            kubectl(
                "wait", "--for=condition=Complete", f"bc/{run}-run", "--timeout=90s", timeout=100
            )
            # As the operator leaves it mid-broadcast: replicas owned through the scale
            # subresource, at a value the stack's own manifest does not have.
            system = Kubectl(kubectl.kubeconfig, "herald-system")
            system("scale", "deployment/herald-sender", "--replicas=2")
            stopped = herald("dev", "down", f"--state-dir={state_dir}")
            assert stopped.returncode == 0, (run, stopped.stderr[-2000:])
    finally:
        herald("dev", "down", f"--state-dir={state_dir}")
    assert StackState.load(state_dir / "state.json") is None


def _broadcast(name: str) -> dict[str, object]:
    return {
        "apiVersion": "herald.dev/v1alpha1",
        "kind": "Broadcast",
        "metadata": {"name": name},
        "spec": {
            "botRef": {"name": "demo-bot"},
            "content": {"text": "back again"},
            "audience": {"chatIds": [1, 2, 3]},
        },
    }
