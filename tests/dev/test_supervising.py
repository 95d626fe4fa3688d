"""The dev supervisor runs as many local processes as the Deployment asks for."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from herald.dev.controlplane import ControlPlane
from herald.dev.kubectl import Kubectl
from herald.dev.supervising import SenderSupervisor, sender_deployment


def eventually(check: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def test_replicas_follow_the_deployment(
    controlplane: ControlPlane, kubectl: Kubectl, tmp_path: Path
) -> None:
    namespace = kubectl.namespace
    assert namespace is not None
    kubectl(
        "apply",
        "-f",
        "-",
        input=yaml.safe_dump(sender_deployment("herald-sender", namespace)),
    )
    supervisor = SenderSupervisor(
        kubeconfig=controlplane.kubeconfig,
        namespace=namespace,
        deployment="herald-sender",
        env=dict(os.environ),
        logs=tmp_path,
        interval=0.1,
        command=(sys.executable, "-c", "import time; time.sleep(600)"),
    ).start()
    try:
        kubectl("scale", "deployment/herald-sender", "--replicas=2")
        eventually(lambda: len(supervisor.pids) == 2)

        def ready() -> int:
            deployment = json.loads(kubectl("get", "deployment/herald-sender", "-o", "json").stdout)
            return int(deployment["status"].get("readyReplicas", 0))

        eventually(lambda: ready() == 2)

        victim = supervisor.pids[0]
        os.kill(victim, signal.SIGKILL)
        eventually(lambda: supervisor.restarts == 1 and len(supervisor.pids) == 2)
        assert victim not in supervisor.pids

        kubectl("scale", "deployment/herald-sender", "--replicas=0")
        eventually(lambda: supervisor.pids == [] and ready() == 0)
    finally:
        supervisor.stop()
    assert supervisor.pids == []
