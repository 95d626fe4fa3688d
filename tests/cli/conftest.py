"""``kubectl broadcast`` run as users run it: the real kubectl finds the plugin on PATH and
hands it the arguments; Broadcasts live on the real API server with statuses the operator's
planner wrote (no operator runs, so nothing changes them behind the test's back)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from herald.dev import samples
from herald.dev.kubectl import Kubectl, find_kubectl

BIN = Path(sys.executable).parent


class Plugin:
    """``kubectl broadcast ...`` against one namespace of the test control plane."""

    def __init__(self, kubectl: Kubectl) -> None:
        self.kubectl = kubectl
        self.namespace = kubectl.namespace or "default"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("KUBECONFIG", "HERALD_"))},
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }

    def __call__(
        self, *args: str, namespace: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        # kubectl refuses flags before a plugin's name: they follow the command, as users
        # write them.
        argv = [
            str(find_kubectl()),
            "broadcast",
            *args,
            f"--kubeconfig={self.kubectl.kubeconfig}",
            f"--namespace={namespace or self.namespace}",
        ]
        return self.raw(argv, env=env)

    def raw(
        self, argv: list[str], *, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**self.env, **(env or {})},
        )

    def create(self, name: str, sample: str = "sending", **spec: Any) -> dict[str, Any]:
        """A Broadcast with the spec and planner-written status of one of the samples."""
        source = samples.objects()[sample]
        manifest = {
            "apiVersion": source["apiVersion"],
            "kind": source["kind"],
            "metadata": {"name": name},
            "spec": {**source["spec"], **spec},
        }
        self.kubectl("apply", "--server-side", "--filename=-", input=json.dumps(manifest))
        if "status" in source:
            self.kubectl(
                "patch",
                "broadcast",
                name,
                "--subresource=status",
                "--type=merge",
                f"--patch={json.dumps({'status': source['status']})}",
            )
        return self.get(name)

    def get(self, name: str) -> dict[str, Any]:
        out = self.kubectl("get", "broadcast", name, "--output=json", "--show-managed-fields")
        body: dict[str, Any] = json.loads(out.stdout)
        return body


@pytest.fixture
def plugin(kubectl: Kubectl) -> Plugin:
    return Plugin(kubectl)
