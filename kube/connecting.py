"""Where the API server is and who Herald is to it: the configuration, loaded once.

In a pod, its ServiceAccount; elsewhere the kubeconfig as kubectl reads it (``kubeconfig``,
else ``$KUBECONFIG``, else ``~/.kube/config``; ``context``, else the current one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubernetes import client, config

from herald.kube.errors import ConfigError

__all__ = ["Loaded", "load"]


@dataclass(frozen=True)
class Loaded:
    configuration: client.Configuration
    namespace: str | None  # the kubeconfig context's; None in a pod or when it names none
    server: str


def load(
    *, kubeconfig: str | None = None, context: str | None = None, in_cluster: bool = True
) -> Loaded:
    """The pod's ServiceAccount when ``in_cluster`` and in a pod, else the kubeconfig's
    ``context``. :class:`ConfigError` when neither is there."""
    configuration = client.Configuration()
    if in_cluster:
        try:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except config.ConfigException:
            pass  # not in a pod: the kubeconfig, below
        else:
            return Loaded(configuration, None, str(configuration.host))
    try:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, context=context, client_configuration=configuration
        )
        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    except (config.ConfigException, OSError) as exc:
        raise ConfigError(str(exc)) from exc
    chosen: dict[str, Any] | None = (
        next((c for c in contexts if c.get("name") == context), None) if context else active
    )
    namespace = ((chosen or {}).get("context") or {}).get("namespace")
    return Loaded(configuration, namespace or None, str(configuration.host))
