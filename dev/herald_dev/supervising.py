"""The dev-mode stand-in for kubelet and the Deployment controller, for one Deployment.

No kubelet runs locally, so nothing would ever start a sender Pod. The supervisor watches the
sender Deployment's ``spec.replicas`` (which the operator sets through the scale subresource)
and keeps that many local ``herald-sender`` processes running, restarting any that die, and
writes the counts back to the Deployment's status so ``kubectl get deploy`` tells the truth.
Scaling is therefore real end to end: operator decision, API server, processes.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from herald.dev import processes

__all__ = ["SENDER_DEPLOYMENT", "SenderSupervisor", "sender_deployment"]

# The operator's default (HERALD_SENDER_DEPLOYMENT) and the chart's name for it.
SENDER_DEPLOYMENT = "herald-sender"

logger = logging.getLogger(__name__)


def sender_deployment(name: str, namespace: str) -> dict[str, Any]:
    """The sender Deployment as the chart will ship it, minus what only a cluster needs."""
    labels = {"app.kubernetes.io/name": "herald", "app.kubernetes.io/component": "sender"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "terminationGracePeriodSeconds": 30,
                    "containers": [
                        {"name": "sender", "image": "herald:dev", "command": ["herald-sender"]}
                    ],
                },
            },
        },
    }


@dataclass
class SenderSupervisor:
    kubeconfig: Path
    namespace: str
    deployment: str
    env: Mapping[str, str]
    logs: Path
    interval: float = 0.5
    command: tuple[str, ...] = (sys.executable, "-m", "herald.sender")
    _running: list[processes.ManagedProcess] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _started: int = 0
    restarts: int = 0

    def start(self) -> SenderSupervisor:
        api_client = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(self.kubeconfig)
        )
        api = client.AppsV1Api(api_client)
        self._thread = threading.Thread(
            target=self._loop, args=(api,), name="sender-supervisor", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        for process in self._running:
            process.stop(timeout=30)
        self._running.clear()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._running if p.alive]

    def _loop(self, api: client.AppsV1Api) -> None:
        while not self._stop.is_set():
            try:
                self._reconcile(api)
            except ApiException as exc:
                if exc.status != 404:
                    logger.warning("reading the sender Deployment failed: %s", exc.reason)
            except Exception:
                logger.exception("sender supervisor step failed")
            self._stop.wait(self.interval)

    def _reconcile(self, api: client.AppsV1Api) -> None:
        scale = api.read_namespaced_deployment_scale(self.deployment, self.namespace)
        desired = int(scale.spec.replicas or 0) if scale.spec is not None else 0
        for process in [p for p in self._running if not p.alive]:
            # A crashed sender is replaced, as a ReplicaSet would replace its Pod.
            logger.warning(
                "sender %s exited with %s; replacing it", process.name, process.returncode
            )
            self._running.remove(process)
            self.restarts += 1
        while len(self._running) < desired:
            self._started += 1
            name = f"sender-{self._started}"
            self._running.append(
                processes.ManagedProcess(
                    name=name,
                    argv=list(self.command),
                    log_path=self.logs / f"{name}.log",
                    env={**self.env, "HERALD_SENDER_ID": name},
                ).start()
            )
        while len(self._running) > desired:
            # Newest first, like a ReplicaSet scaling down; SIGTERM lets it finish in-flight sends.
            self._running.pop().stop(timeout=30)
        ready = sum(1 for p in self._running if p.alive)
        api.patch_namespaced_deployment_status(
            self.deployment,
            self.namespace,
            {
                "status": {
                    "replicas": len(self._running),
                    "readyReplicas": ready,
                    "availableReplicas": ready,
                    "updatedReplicas": len(self._running),
                }
            },
        )
