"""Where a Herald component's Service answers: found by the chart's labels, as the user
running the plugin may list Services of the namespace Herald is installed in."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from herald.kube.errors import translated

__all__ = ["Services"]

_PART_OF = "app.kubernetes.io/part-of=herald"


class Services:
    def __init__(self, api: client.ApiClient, *, timeout: float | None = None) -> None:
        self._core = client.CoreV1Api(api)
        self.timeout = timeout

    def url_of(self, namespace: str, component: str, *, port: str = "http") -> str | None:
        """``http://<name>.<namespace>.svc:<port>`` of the component's Service (the chart
        labels it app.kubernetes.io/component); None when the namespace has none."""
        with translated():
            found: Any = self._core.list_namespaced_service(
                namespace,
                label_selector=f"{_PART_OF},app.kubernetes.io/component={component}",
                _request_timeout=self.timeout,
            )
        for service in found.items:
            for candidate in service.spec.ports or ():
                if candidate.name == port:
                    name = service.metadata.name
                    return f"http://{name}.{namespace}.svc:{candidate.port}"
        return None
