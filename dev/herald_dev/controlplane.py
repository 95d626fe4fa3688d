"""A real Kubernetes control plane (etcd + kube-apiserver), started the way envtest does it.

No kubelet and no controller-manager: the API server is real (schema validation, CEL, RBAC,
the status subresource, server-side apply), nothing reconciles Pods. The binaries are built
from the Go module in ``dev/controlplane`` at pinned release versions and cached in the user's
cache directory under a key made of the pins and the module's content (:mod:`herald.dev.gobuild`),
so a build happens once per pin change.
"""

from __future__ import annotations

import contextlib
import os
import re
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from herald.dev import certs, gobuild, processes

__all__ = [
    "Binaries",
    "ControlPlane",
    "ensure_binaries",
    "module_dir",
    "read_pins",
]

_MODULE_FILES = ("go.mod", "go.sum", "cmd/kube-apiserver/main.go", "cmd/etcd/main.go")


def module_dir() -> Path:
    """The Go module that pins and builds the control-plane binaries."""
    return Path(__file__).resolve().parent.parent / "controlplane"


@dataclass(frozen=True)
class Pins:
    kubernetes: str
    etcd: str


def read_pins(go_mod: Path) -> Pins:
    text = go_mod.read_text()
    kube = re.search(r"^\s*k8s\.io/kubernetes\s+(v\S+)", text, re.MULTILINE)
    etcd = re.search(r"^\s*go\.etcd\.io/etcd/server/v3\s+(v\S+)", text, re.MULTILINE)
    if kube is None or etcd is None:
        raise processes.HarnessError(f"{go_mod} does not pin k8s.io/kubernetes and etcd")
    return Pins(kubernetes=kube.group(1), etcd=etcd.group(1))


@dataclass(frozen=True)
class Binaries:
    kube_apiserver: Path
    etcd: Path
    pins: Pins


def _ldflags(pins: Pins) -> str:
    """Stamp the release into the binary: without it the server reports v0.0.0-master, which
    kubectl and client libraries refuse to parse."""
    major, minor = pins.kubernetes.removeprefix("v").split(".")[:2]
    package = "k8s.io/component-base/version"
    stamps = {
        "gitVersion": pins.kubernetes,
        "gitMajor": major,
        "gitMinor": minor,
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
    }
    return " ".join(["-s", "-w", *(f"-X {package}.{k}={v}" for k, v in stamps.items())])


def _go_build(source: Path, pins: Pins) -> gobuild.GoBuild:
    return gobuild.GoBuild(
        name="controlplane",
        source=source,
        files=_MODULE_FILES,
        packages=("./cmd/...",),
        binaries=("kube-apiserver", "etcd"),
        label=f"kubernetes-{pins.kubernetes}_etcd-{pins.etcd}",
        ldflags=_ldflags(pins),
    )


def ensure_binaries(*, say: Callable[[str], None] = lambda _: None) -> Binaries:
    """Return cached binaries, building them first if the pins changed.

    ``HERALD_CONTROLPLANE_BIN_DIR`` points at prebuilt ``kube-apiserver`` and ``etcd`` instead.
    """
    source = module_dir()
    pins = read_pins(source / "go.mod")
    override = os.environ.get("HERALD_CONTROLPLANE_BIN_DIR")
    if override:
        found = Binaries(Path(override) / "kube-apiserver", Path(override) / "etcd", pins)
        for binary in (found.kube_apiserver, found.etcd):
            if not binary.is_file():
                raise processes.HarnessError(f"HERALD_CONTROLPLANE_BIN_DIR has no {binary.name}")
        return found
    target = gobuild.ensure(
        _go_build(source, pins),
        what=f"kube-apiserver {pins.kubernetes} and etcd {pins.etcd}",
        say=say,
    )
    return Binaries(target / "kube-apiserver", target / "etcd", pins)


@dataclass(frozen=True)
class Endpoints:
    """What a client needs to reach a running control plane."""

    url: str
    kubeconfig: Path
    etcd_url: str


class ControlPlane(processes.Service):
    """etcd and kube-apiserver as child processes with a generated PKI and kubeconfig."""

    def __init__(self, workdir: Path, binaries: Binaries) -> None:
        self.workdir = workdir
        self.binaries = binaries
        self.kubeconfig = workdir / "kubeconfig"
        self.etcd: processes.ManagedProcess | None = None
        self.apiserver: processes.ManagedProcess | None = None
        self.url = ""

    def start(self, *, timeout: float = 90.0) -> ControlPlane:
        self.workdir.mkdir(parents=True, exist_ok=True)
        pki = certs.write_pki(self.workdir / "pki")
        etcd_port, peer_port, api_port = (processes.free_port() for _ in range(3))
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        self.etcd = processes.ManagedProcess(
            name="etcd",
            argv=[
                str(self.binaries.etcd),
                "--name=herald",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=herald={peer_url}",
                # Throwaway data: durability costs seconds per test session and buys nothing.
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
            log_path=self.workdir / "etcd.log",
        ).start()
        processes.wait_until(
            lambda: processes.http_ok(f"{etcd_url}/health"),
            timeout=timeout,
            what="etcd",
            process=self.etcd,
        )
        self.url = f"https://127.0.0.1:{api_port}"
        self.apiserver = processes.ManagedProcess(
            name="kube-apiserver",
            argv=[
                str(self.binaries.kube_apiserver),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={api_port}",
                f"--cert-dir={self.workdir / 'apiserver-certs'}",
                f"--tls-cert-file={pki.serving_cert}",
                f"--tls-private-key-file={pki.serving_key}",
                f"--client-ca-file={pki.ca_cert}",
                "--authorization-mode=RBAC",
                f"--service-account-key-file={pki.service_account_pub}",
                f"--service-account-signing-key-file={pki.service_account_key}",
                f"--service-account-issuer={self.url}",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--allow-privileged=true",
                # No controller-manager mints tokens here, so pods could never be admitted.
                "--disable-admission-plugins=ServiceAccount",
                # The kubernetes Service endpoint would point at loopback, which is refused.
                "--endpoint-reconciler-type=none",
                "--v=1",
            ],
            log_path=self.workdir / "kube-apiserver.log",
        ).start()
        context = ssl.create_default_context(cafile=str(pki.ca_cert))
        context.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))
        processes.wait_until(
            lambda: processes.http_ok(f"{self.url}/readyz", context=context),
            timeout=timeout,
            what="kube-apiserver /readyz",
            process=self.apiserver,
            interval=0.2,
        )
        self.kubeconfig.write_text(yaml.safe_dump(_kubeconfig(self.url, pki)))
        self.kubeconfig.chmod(0o600)
        return self

    @property
    def endpoints(self) -> Endpoints:
        return Endpoints(url=self.url, kubeconfig=self.kubeconfig, etcd_url="")

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in (self.apiserver, self.etcd) if p is not None and p.alive]

    def stop(self) -> None:
        # The API server first: it would otherwise log etcd errors while shutting down.
        for process in (self.apiserver, self.etcd):
            if process is not None:
                process.stop()


def _kubeconfig(url: str, pki: certs.ControlPlanePki) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "herald-dev",
                "cluster": {"server": url, "certificate-authority": str(pki.ca_cert)},
            }
        ],
        "users": [
            {
                "name": "herald-admin",
                "user": {
                    "client-certificate": str(pki.admin_cert),
                    "client-key": str(pki.admin_key),
                },
            }
        ],
        "contexts": [
            {
                "name": "herald-dev",
                "context": {"cluster": "herald-dev", "user": "herald-admin"},
            }
        ],
        "current-context": "herald-dev",
    }


@contextlib.contextmanager
def running(
    workdir: Path, *, say: Callable[[str], None] = lambda _: None
) -> Iterator[ControlPlane]:
    """Build if needed, start, yield, and always stop: the one entry point tests and CLI use."""
    with ControlPlane(workdir, ensure_binaries(say=say)) as plane:
        yield plane
