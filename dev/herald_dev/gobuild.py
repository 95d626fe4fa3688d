"""Go main packages built once from a pinned Go module and cached outside the repository.

No binary can be downloaded, so the harness builds its tools (kube-apiserver, etcd, helm,
kstatus) from Go modules at pinned releases. A build lands in
``$XDG_CACHE_HOME/herald/<name>/<key>``: the key names the pins for humans and hashes the
module's files and link flags, so a pin change (or an edit of a wrapper) builds afresh, and
anything else finds the cached binaries. Older keys are pruned after a successful build.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from herald.dev import processes

__all__ = ["GoBuild", "cache_root", "ensure", "read_requirement"]


@dataclass(frozen=True)
class GoBuild:
    """One cached build: which module, which main packages, and what names the result."""

    name: str  # the cache folder under herald/, e.g. "controlplane"
    source: Path  # the Go module's directory
    files: Sequence[str]  # module files whose content enters the key
    packages: Sequence[str]  # main packages, as `go build` takes them
    binaries: Sequence[str]  # file names the build must produce
    label: str  # the readable part of the key: the pins, e.g. "helm-v3.22.0"
    ldflags: str = "-s -w"

    def key(self) -> str:
        digest = hashlib.sha256(self.ldflags.encode())
        for name in self.files:
            digest.update(name.encode())
            digest.update((self.source / name).read_bytes())
        return f"{self.label}_{digest.hexdigest()[:12]}"

    def target(self) -> Path:
        return cache_root() / self.name / self.key()

    def complete(self, target: Path) -> bool:
        return all((target / binary).is_file() for binary in self.binaries)


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "herald"


def read_requirement(go_mod: Path, module: str) -> str:
    """The version go.mod requires of ``module`` (direct or indirect)."""
    found = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", go_mod.read_text(), re.M)
    if found is None:
        raise processes.HarnessError(f"{go_mod} does not require {module}")
    return found.group(1)


def ensure(build: GoBuild, *, what: str, say: Callable[[str], None] = lambda _: None) -> Path:
    """Return the folder of the cached binaries, building them first if the key is new.

    ``what`` names the binaries in messages ("helm v3.22.0 and kstatus").
    """
    target = build.target()
    if build.complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Concurrent test runs must not build twice into the same place.
    with (target.parent / ".build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not build.complete(target):
            _build(build, target, what=what, say=say)
    return target


def _build(build: GoBuild, target: Path, *, what: str, say: Callable[[str], None]) -> None:
    go = shutil.which("go")
    if go is None:
        raise processes.HarnessError(
            f"the Go toolchain is needed once to build {what} (install Go >= 1.26)"
        )
    say(f"building {what} from Go modules (once per pin; cached in {target})")
    staging = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
    started = time.monotonic()
    try:
        result = subprocess.run(
            [
                go,
                "build",
                "-trimpath",
                # The module sits inside this repository's checkout: stamping its VCS state
                # would make the binary depend on uncommitted edits, and fails in some CI.
                "-buildvcs=false",
                f"-ldflags={build.ldflags}",
                "-o",
                f"{staging}{os.sep}",
                *build.packages,
            ],
            cwd=build.source,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise processes.HarnessError(f"go build failed:\n{result.stderr[-4000:]}")
        missing = [binary for binary in build.binaries if not (staging / binary).is_file()]
        if missing:
            raise processes.HarnessError(f"go build produced no {', '.join(missing)}")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
        # Binaries of earlier pins are tens to hundreds of MB and nothing uses them any more.
        for stale in target.parent.iterdir():
            if stale != target and stale.is_dir() and not stale.name.startswith("."):
                shutil.rmtree(stale, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    say(f"built {what} in {time.monotonic() - started:.0f}s")
