"""A throwaway PostgreSQL cluster from Debian's binaries: initdb in a temp dir, random port.

PostgreSQL refuses to run as root, and CI runs as root, so the cluster then runs as the
``postgres`` system user that Debian's package creates, with its data in a directory of its
own (a pytest or mkdtemp directory is private to root and the server could not enter it).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from herald.dev import processes

__all__ = ["PostgresCluster", "find_bindir"]

_BOOTSTRAP_HINT = "install PostgreSQL (make bootstrap, or apt-get install postgresql)"


def find_bindir() -> Path:
    """The directory of initdb/postgres: ``HERALD_PG_BINDIR``, Debian's newest, or PATH."""
    override = os.environ.get("HERALD_PG_BINDIR")
    if override:
        return Path(override)
    debian = Path("/usr/lib/postgresql")
    if debian.is_dir():
        versions = sorted(
            (p for p in debian.iterdir() if (p / "bin" / "initdb").is_file()),
            key=lambda p: int(re.sub(r"\D", "", p.name) or 0),
        )
        if versions:
            return versions[-1] / "bin"
    initdb = shutil.which("initdb")
    if initdb is None:
        raise processes.HarnessError(f"PostgreSQL server binaries not found: {_BOOTSTRAP_HINT}")
    return Path(initdb).resolve().parent


class PostgresCluster(processes.Service):
    """One ``postgres`` server with trust authentication for the ``herald`` role on loopback."""

    superuser = "herald"

    def __init__(self, workdir: Path, *, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port or processes.free_port()
        self.bindir = find_bindir()
        self.process: processes.ManagedProcess | None = None
        self._datadir_root: Path | None = None
        self._run_as = _unprivileged_user()

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{self.superuser}@127.0.0.1:{self.port}/{database}"

    def start(self, *, timeout: float = 60.0) -> PostgresCluster:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._datadir_root = Path(tempfile.mkdtemp(prefix="herald-pg-"))
        datadir = self._datadir_root / "data"
        socket_dir = self._datadir_root / "sockets"
        socket_dir.mkdir()
        if self._run_as is not None:
            record = pwd.getpwnam(self._run_as)
            for path in (self._datadir_root, socket_dir):
                os.chown(path, record.pw_uid, record.pw_gid)
        initdb = subprocess.run(
            [
                str(self.bindir / "initdb"),
                f"--pgdata={datadir}",
                f"--username={self.superuser}",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
                "--no-instructions",
            ],
            capture_output=True,
            text=True,
            user=self._run_as,
            check=False,
        )
        if initdb.returncode != 0:
            raise processes.HarnessError(f"initdb failed:\n{initdb.stderr[-2000:]}")
        self.process = processes.ManagedProcess(
            name="postgres",
            argv=[
                str(self.bindir / "postgres"),
                "-D",
                str(datadir),
                "-p",
                str(self.port),
                "-k",
                str(socket_dir),
                "-c",
                "listen_addresses=127.0.0.1",
                # A throwaway cluster: durability only costs time here.
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=300",
            ],
            log_path=self.workdir / "postgres.log",
            user=self._run_as,
        ).start()
        ready = [
            str(self.bindir / "pg_isready"),
            "-q",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            self.superuser,
        ]
        processes.wait_until(
            lambda: subprocess.run(ready, check=False).returncode == 0,
            timeout=timeout,
            what="postgres",
            process=self.process,
            interval=0.1,
        )
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
        if self._datadir_root is not None:
            shutil.rmtree(self._datadir_root, ignore_errors=True)
            self._datadir_root = None


def _unprivileged_user() -> str | None:
    if os.geteuid() != 0:
        return None
    with contextlib.suppress(KeyError):
        pwd.getpwnam("postgres")
        return "postgres"
    raise processes.HarnessError(
        f"running as root needs the 'postgres' system user to run the server: {_BOOTSTRAP_HINT}"
    )
