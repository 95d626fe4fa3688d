"""Loading the configuration as kubectl does: the named or current context, its namespace."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from herald.kube.connecting import load
from herald.kube.errors import ConfigError


@pytest.fixture
def kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)  # not in a pod
    path = tmp_path / "config"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "a", "cluster": {"server": "https://a.example:6443"}},
                    {"name": "b", "cluster": {"server": "https://b.example:6443"}},
                ],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [
                    {"name": "plain", "context": {"cluster": "a", "user": "u"}},
                    {
                        "name": "marketing",
                        "context": {"cluster": "b", "user": "u", "namespace": "marketing"},
                    },
                ],
                "current-context": "plain",
            }
        )
    )
    return path


def test_the_current_context_names_no_namespace(kubeconfig: Path) -> None:
    loaded = load(kubeconfig=str(kubeconfig))
    assert (loaded.server, loaded.namespace) == ("https://a.example:6443", None)


@pytest.mark.parametrize("in_cluster", [True, False])
def test_a_named_context_and_its_namespace(kubeconfig: Path, in_cluster: bool) -> None:
    loaded = load(kubeconfig=str(kubeconfig), context="marketing", in_cluster=in_cluster)
    assert (loaded.server, loaded.namespace) == ("https://b.example:6443", "marketing")
    assert loaded.configuration.host == "https://b.example:6443"


def test_an_unknown_context_is_a_config_error(kubeconfig: Path) -> None:
    with pytest.raises(ConfigError, match="nowhere"):
        load(kubeconfig=str(kubeconfig), context="nowhere")


def test_a_missing_kubeconfig_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load(kubeconfig=str(tmp_path / "absent"), in_cluster=False)
