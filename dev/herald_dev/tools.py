"""helm and kstatus, built from the Go module in ``dev/tools`` at pinned releases.

``helm`` renders, lints and installs the chart in ``charts/herald``. ``kstatus`` prints what
sigs.k8s.io/cli-utils' ``status.Compute`` (the health logic of Flux and of kstatus-aware
tools) makes of Kubernetes objects. Both are built once per pin and cached in
``$XDG_CACHE_HOME/herald/tools`` (see :mod:`herald.dev.gobuild`).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from herald.dev import gobuild, processes

__all__ = ["Tools", "ensure_tools", "helm", "kstatus", "module_dir", "read_pins"]

_MODULE_FILES = ("go.mod", "go.sum", "cmd/kstatus/main.go")
_HELM = "helm.sh/helm/v3"
_CLI_UTILS = "sigs.k8s.io/cli-utils"
_CLIENT_GO = "k8s.io/client-go"


def module_dir() -> Path:
    """The Go module that pins and builds helm and kstatus."""
    return Path(__file__).resolve().parent.parent / "tools"


@dataclass(frozen=True)
class Pins:
    helm: str
    cli_utils: str
    client_go: str


def read_pins(go_mod: Path) -> Pins:
    return Pins(
        helm=gobuild.read_requirement(go_mod, _HELM),
        cli_utils=gobuild.read_requirement(go_mod, _CLI_UTILS),
        client_go=gobuild.read_requirement(go_mod, _CLIENT_GO),
    )


@dataclass(frozen=True)
class Tools:
    helm: Path
    kstatus: Path
    pins: Pins


def _ldflags(pins: Pins) -> str:
    """Stamp what helm's own release build stamps: its version, and the Kubernetes version
    that `helm template` and `helm lint` assume (client-go v0.X is Kubernetes 1.X)."""
    minor = pins.client_go.removeprefix("v").split(".")[1]
    stamps = {
        f"{_HELM}/internal/version.version": pins.helm,
        f"{_HELM}/internal/version.gitTreeState": "clean",
        f"{_HELM}/pkg/lint/rules.k8sVersionMajor": "1",
        f"{_HELM}/pkg/lint/rules.k8sVersionMinor": minor,
        f"{_HELM}/pkg/chartutil.k8sVersionMajor": "1",
        f"{_HELM}/pkg/chartutil.k8sVersionMinor": minor,
    }
    return " ".join(["-s", "-w", *(f"-X {k}={v}" for k, v in stamps.items())])


def _go_build(source: Path, pins: Pins) -> gobuild.GoBuild:
    return gobuild.GoBuild(
        name="tools",
        source=source,
        files=_MODULE_FILES,
        # helm's main package is built straight from its module (go.mod's `tool` line pins
        # it); kstatus is this module's own.
        packages=(f"{_HELM}/cmd/helm", "./cmd/kstatus"),
        binaries=("helm", "kstatus"),
        label=f"helm-{pins.helm}_cli-utils-{pins.cli_utils}",
        ldflags=_ldflags(pins),
    )


def ensure_tools(*, say: Callable[[str], None] = lambda _: None) -> Tools:
    """Return the cached helm and kstatus, building them first if the pins changed.

    ``HERALD_TOOLS_BIN_DIR`` points at prebuilt ``helm`` and ``kstatus`` instead.
    """
    source = module_dir()
    pins = read_pins(source / "go.mod")
    override = os.environ.get("HERALD_TOOLS_BIN_DIR")
    if override:
        found = Tools(Path(override) / "helm", Path(override) / "kstatus", pins)
        for binary in (found.helm, found.kstatus):
            if not binary.is_file():
                raise processes.HarnessError(f"HERALD_TOOLS_BIN_DIR has no {binary.name}")
        return found
    target = gobuild.ensure(
        _go_build(source, pins),
        what=f"helm {pins.helm} and kstatus (cli-utils {pins.cli_utils})",
        say=say,
    )
    return Tools(target / "helm", target / "kstatus", pins)


def helm(
    *args: str,
    input: str | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = False,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run helm with ``args`` (and ``env`` over this process's environment).

    ``check=True`` turns a failure into a :class:`~herald.dev.processes.HarnessError` that
    carries helm's own message.
    """
    binary = ensure_tools().helm
    result = subprocess.run(
        [str(binary), *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if check and result.returncode != 0:
        raise processes.HarnessError(
            f"helm {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}"
        )
    return result


def kstatus(objects: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """kstatus' verdict on each object, in order: ``status`` (Current, InProgress, Failed,
    Terminating, Unknown), ``message``, and the object's apiVersion, kind, namespace, name."""
    result = subprocess.run(
        [str(ensure_tools().kstatus)],
        input=json.dumps(list(objects)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise processes.HarnessError(result.stderr.strip() or "kstatus failed")
    return [json.loads(line) for line in result.stdout.splitlines()]
