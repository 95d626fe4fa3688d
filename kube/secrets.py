"""Bot token Secrets on the API server: their data, and the token under one key.

Blocking calls, each bounded by ``timeout`` when one is given (see
:mod:`herald.kube.broadcasts`); what the data says is :mod:`herald.kube.tokens`.
"""

from __future__ import annotations

from kubernetes import client

from herald.kube.errors import NotFound, translated
from herald.kube.tokens import TokenRead, token_in

__all__ = ["Secrets"]


class Secrets:
    def __init__(self, api: client.ApiClient, *, timeout: float | None = None) -> None:
        self._core = client.CoreV1Api(api)
        self.timeout = timeout

    def data(self, namespace: str, name: str) -> dict[str, str] | None:
        """A Secret's (base64) data; None when there is no such Secret."""
        try:
            with translated():
                secret = self._core.read_namespaced_secret(
                    name, namespace, _request_timeout=self.timeout
                )
        except NotFound:
            return None
        return {k: str(v) for k, v in (secret.data or {}).items()}

    def token(self, namespace: str, name: str, key: str) -> TokenRead:
        """The bot token under ``key`` of the Secret ``name``, or what stands in its way."""
        return token_in(self.data(namespace, name), key)
