"""Broadcasts and bot Secrets through the Kubernetes API, as the user running the plugin.

Credentials come from the kubeconfig as kubectl reads it (``--kubeconfig``, else
``$KUBECONFIG``, else ``~/.kube/config``; ``--context``; the context's namespace unless
``-n`` names one), through :mod:`herald.kube`. Its errors are translated here, once, into
:class:`PluginError` with a message a user can act on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from pydantic import SecretStr, ValidationError

from herald.core.broadcasts import Broadcast
from herald.kube import connecting, tokens
from herald.kube.broadcasts import Broadcasts
from herald.kube.errors import ConfigError, KubeError, NotFound, Unreachable
from herald.kube.secrets import Secrets
from herald.kube.services import Services

__all__ = [
    "FIELD_MANAGER",
    "BroadcastNotFound",
    "Cluster",
    "PluginError",
    "connect",
    "parse",
]

# The manager name `kubectl get --show-managed-fields` shows for a pause made with the
# plugin; an Argo CD ignoreDifferences rule can name it to leave such a pause alone.
FIELD_MANAGER = "kubectl-broadcast"


class PluginError(Exception):
    """Something the user can fix; the message says what."""


class BroadcastNotFound(PluginError):
    pass


@dataclass(frozen=True)
class Cluster:
    """One API server, as one kubeconfig context sees it."""

    broadcasts: Broadcasts
    secrets: Secrets
    services: Services
    namespace: str  # -n, else the context's namespace, else "default"
    server: str
    # The kubeconfig user's bearer token (a token, or what its exec plugin gave); None for
    # a user of client certificates.
    bearer: str | None = None

    @contextlib.contextmanager
    def _translated(self, broadcast: tuple[str, str] | None = None) -> Iterator[None]:
        """:class:`KubeError` as :class:`PluginError`; a 404 of the (namespace, name) of
        ``broadcast`` as :class:`BroadcastNotFound`."""
        try:
            yield
        except NotFound as exc:
            if broadcast is None:
                raise PluginError(str(exc)) from exc
            namespace, name = broadcast
            raise BroadcastNotFound(
                f'broadcast "{name}" not found in namespace "{namespace}"'
            ) from exc
        except Unreachable as exc:
            raise PluginError(f"cannot reach the API server at {self.server}: {exc}") from exc
        except KubeError as exc:
            if exc.status == 403:
                raise PluginError(f"forbidden: {exc}") from exc
            raise PluginError(str(exc)) from exc

    def list(self, namespace: str | None) -> list[dict[str, Any]]:
        """Broadcasts of one namespace, or of all of them (None)."""
        with self._translated():
            return self.broadcasts.items(None if namespace is None else [namespace])

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        with self._translated((namespace, name)):
            return self.broadcasts.get(namespace, name)

    def set_paused(self, namespace: str, name: str, *, paused: bool) -> dict[str, Any]:
        with self._translated((namespace, name)):
            return self.broadcasts.set_paused(namespace, name, paused=paused)

    def api_url(self, namespace: str) -> str | None:
        """herald-api's Service in ``namespace``, as a URL of the cluster's DNS."""
        with self._translated():
            return self.services.url_of(namespace, "api")

    def bot_token(self, broadcast: Broadcast) -> SecretStr:
        """The token in the Secret that spec.botRef names, in the Broadcast's namespace."""
        namespace = broadcast.metadata.namespace or self.namespace
        ref = broadcast.spec.bot_ref
        with self._translated():
            read = self.secrets.token(namespace, ref.name, ref.key)
        match read:
            case tokens.Found(token=token):
                return token
            case tokens.SecretNotFound():
                raise PluginError(
                    f'Secret "{ref.name}" (spec.botRef of broadcast "{broadcast.metadata.name}") '
                    f'not found in namespace "{namespace}"'
                )
            case tokens.KeyNotFound():
                raise PluginError(
                    f'Secret "{ref.name}" in namespace "{namespace}" has no key "{ref.key}" '
                    "(spec.botRef.key)"
                )
            case tokens.Malformed():
                raise PluginError(
                    f'the value of key "{ref.key}" in Secret "{ref.name}" is not a bot token '
                    "(<digits>:<secret>)"
                )


def parse(body: dict[str, Any]) -> Broadcast:
    """A Broadcast object as the models read it; a readable error for one they cannot."""
    try:
        return Broadcast.model_validate(body)
    except ValidationError as exc:
        name = body.get("metadata", {}).get("name", "?")
        raise PluginError(
            f'broadcast "{name}" does not match this plugin\'s version of the API: '
            f"{exc.error_count()} problem(s), first: {exc.errors()[0]['msg']}"
        ) from exc


def connect(*, kubeconfig: str | None, context: str | None, namespace: str | None) -> Cluster:
    """The API server of the kubeconfig's context, as kubectl would pick it."""
    try:
        # Only the kubeconfig, even in a pod: the plugin acts as the user who runs it.
        loaded = connecting.load(kubeconfig=kubeconfig, context=context, in_cluster=False)
    except ConfigError as exc:
        where = kubeconfig or "$KUBECONFIG or ~/.kube/config"
        raise PluginError(f"cannot load the kubeconfig ({where}): {exc}") from exc
    api = client.ApiClient(loaded.configuration)
    # As the client sends it ("Bearer <token>"), refreshed first when an exec plugin gave it.
    authorization = str(loaded.configuration.get_api_key_with_prefix("BearerToken") or "")
    scheme, _, bearer = authorization.partition(" ")
    return Cluster(
        broadcasts=Broadcasts(api, field_manager=FIELD_MANAGER),
        secrets=Secrets(api),
        services=Services(api),
        namespace=namespace or loaded.namespace or "default",
        server=loaded.server,
        bearer=bearer if scheme.lower() == "bearer" and bearer else None,
    )
