"""Go tools built from pinned modules: the cache logic on a tiny module, and kstatus itself."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from herald.dev import gobuild, processes, tools


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh Herald cache; Go's own build cache stays the user's (it would otherwise follow
    XDG_CACHE_HOME and rebuild the standard library)."""
    gocache = subprocess.run(
        ["go", "env", "GOCACHE"], capture_output=True, text=True, check=True
    ).stdout.strip()
    monkeypatch.setenv("GOCACHE", gocache)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "herald"


def tiny_module(folder: Path, *, greeting: str) -> gobuild.GoBuild:
    (folder / "cmd" / "hello").mkdir(parents=True)
    (folder / "go.mod").write_text("module example.com/hello\n\ngo 1.26.0\n")
    (folder / "cmd" / "hello" / "main.go").write_text(
        f'package main\n\nfunc main() {{ println("{greeting}") }}\n'
    )
    return gobuild.GoBuild(
        name="hello",
        source=folder,
        files=("go.mod", "cmd/hello/main.go"),
        packages=("./cmd/hello",),
        binaries=("hello",),
        label="hello-v1",
    )


def test_a_build_is_cached_by_key_and_a_new_key_prunes_the_old(tmp_path: Path, cache: Path) -> None:
    build = tiny_module(tmp_path / "module", greeting="one")
    said: list[str] = []

    first = gobuild.ensure(build, what="hello", say=said.append)
    assert (first / "hello").is_file()
    assert first == cache / "hello" / build.key()
    assert first.name.startswith("hello-v1_")
    assert len(said) == 2  # building ..., built ...

    said.clear()
    assert gobuild.ensure(build, what="hello", say=said.append) == first
    assert said == []  # found in the cache: nothing built

    (tmp_path / "module" / "cmd" / "hello" / "main.go").write_text(
        'package main\n\nfunc main() { println("two") }\n'
    )
    second = gobuild.ensure(build, what="hello")
    assert second != first
    assert (second / "hello").is_file()
    assert not first.exists()  # the stale key is pruned


def test_a_failing_build_is_a_readable_error_and_leaves_no_cache(
    tmp_path: Path, cache: Path
) -> None:
    build = tiny_module(tmp_path / "module", greeting='" + undefined + "')
    with pytest.raises(processes.HarnessError, match=r"(?s)go build failed:.*undefined: undefined"):
        gobuild.ensure(build, what="hello")
    assert [path.name for path in (cache / "hello").iterdir()] == [".build.lock"]


def test_a_requirement_missing_from_go_mod_is_named(tmp_path: Path) -> None:
    go_mod = tmp_path / "go.mod"
    go_mod.write_text("module example.com/x\n\nrequire helm.sh/helm/v3 v3.22.0\n")
    assert gobuild.read_requirement(go_mod, "helm.sh/helm/v3") == "v3.22.0"
    with pytest.raises(processes.HarnessError, match=r"does not require sigs\.k8s\.io/cli-utils"):
        gobuild.read_requirement(go_mod, "sigs.k8s.io/cli-utils")


def test_helm_reports_the_pinned_version() -> None:
    pins = tools.read_pins(tools.module_dir() / "go.mod")
    version = tools.helm("version", "--template={{.Version}}", check=True)
    assert version.stdout == pins.helm


def _deployment(name: str, *, generation: int, observed: int, ready: int) -> dict[str, object]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "herald", "generation": generation},
        "spec": {"replicas": 2},
        "status": {
            "observedGeneration": observed,
            "replicas": 2,
            "updatedReplicas": ready,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "conditions": [{"type": "Available", "status": "True" if ready == 2 else "False"}],
        },
    }


def test_kstatus_judges_deployments_in_order() -> None:
    verdicts = tools.kstatus(
        [
            _deployment("ready", generation=3, observed=3, ready=2),
            _deployment("rolling", generation=3, observed=3, ready=1),
            _deployment("unseen", generation=4, observed=3, ready=2),
        ]
    )
    assert [(v["name"], v["status"]) for v in verdicts] == [
        ("ready", "Current"),
        ("rolling", "InProgress"),
        ("unseen", "InProgress"),
    ]
    assert verdicts[0]["message"] == "Deployment is available. Replicas: 2"
    assert verdicts[2]["message"] == (
        "Deployment generation is 4, but latest observed generation is 3"
    )
    assert verdicts[0]["namespace"] == "herald"


def test_kstatus_refuses_what_is_not_an_object() -> None:
    with pytest.raises(processes.HarnessError, match="object without a kind"):
        tools.kstatus([{"metadata": {"name": "x"}}])


def test_a_tools_override_without_binaries_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HERALD_TOOLS_BIN_DIR", str(tmp_path))
    with pytest.raises(processes.HarnessError, match="HERALD_TOOLS_BIN_DIR has no helm"):
        tools.ensure_tools()
