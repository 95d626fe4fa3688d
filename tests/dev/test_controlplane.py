"""The harness's control plane is a real API server: RBAC enforced, clean teardown."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from herald.dev import controlplane as controlplanes
from herald.dev import processes
from herald.dev.kubectl import Kubectl


def test_pins_are_read_from_the_go_module() -> None:
    pins = controlplanes.read_pins(controlplanes.module_dir() / "go.mod")
    assert pins.kubernetes.startswith("v1.")
    assert pins.etcd.startswith("v3.")


def test_a_go_mod_without_pins_is_a_clear_error(tmp_path: Path) -> None:
    go_mod = tmp_path / "go.mod"
    go_mod.write_text("module example.com/x\n")
    with pytest.raises(processes.HarnessError, match="does not pin"):
        controlplanes.read_pins(go_mod)


def test_the_api_server_serves_the_pinned_version(controlplane: controlplanes.ControlPlane) -> None:
    version = json.loads(Kubectl(controlplane.kubeconfig)("version", "-o", "json").stdout)
    pins = controlplanes.read_pins(controlplanes.module_dir() / "go.mod")
    assert version["serverVersion"]["gitVersion"] == pins.kubernetes


def test_rbac_is_enforced(kubectl: Kubectl) -> None:
    """A service account with no binding is refused; after a binding it is allowed."""
    who = f"--as=system:serviceaccount:{kubectl.namespace}:reader"
    denied = kubectl("auth", "can-i", "list", "configmaps", who, check=False)
    assert denied.stdout.strip() == "no"
    kubectl("create", "serviceaccount", "reader")
    kubectl("create", "role", "reader", "--verb=list", "--resource=configmaps")
    kubectl(
        "create",
        "rolebinding",
        "reader",
        "--role=reader",
        f"--serviceaccount={kubectl.namespace}:reader",
    )
    allowed = kubectl("auth", "can-i", "list", "configmaps", who, check=False)
    assert allowed.stdout.strip() == "yes"
    forbidden = kubectl("get", "secrets", who, check=False)
    assert forbidden.returncode != 0
    assert "forbidden" in forbidden.stderr


def test_the_broadcast_crd_is_served(kubectl: Kubectl) -> None:
    resources = kubectl("api-resources", "--api-group=herald.dev", "-o", "name").stdout
    assert "broadcasts.herald.dev" in resources


def test_stopping_leaves_no_process(tmp_path: Path) -> None:
    with controlplanes.running(tmp_path) as plane:
        pids = plane.pids
        assert len(pids) == 2
        assert plane.kubeconfig.is_file()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
