"""Broadcasts and bot Secrets through the Kubernetes API, as the user running the plugin.

Credentials come from the kubeconfig as kubectl reads it (``--kubeconfig``, else
``$KUBECONFIG``, else ``~/.kube/config``; ``--context``; the context's namespace unless
``-n`` names one). ``ApiException`` and connection failures are translated here, once, into
:class:`PluginError` with a message a user can act on.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import urllib3.exceptions
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from pydantic import SecretStr, ValidationError

from herald.core import subjects
from herald.core.broadcasts import GROUP, PLURAL, VERSION, Broadcast
from herald.core.kubeapi import api_message

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

_T = TypeVar("_T")


class PluginError(Exception):
    """Something the user can fix; the message says what."""


class BroadcastNotFound(PluginError):
    pass


@dataclass(frozen=True)
class Cluster:
    """One API server, as one kubeconfig context sees it."""

    api: client.ApiClient
    namespace: str  # -n, else the context's namespace, else "default"
    server: str

    def _call(self, call: Callable[[], _T]) -> _T:
        try:
            return call()
        except ApiException as exc:
            if exc.status == 403:
                raise PluginError(f"forbidden: {api_message(exc)}") from exc
            raise PluginError(api_message(exc)) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise PluginError(f"cannot reach the API server at {self.server}: {exc}") from exc

    def _broadcast_call(self, namespace: str, name: str, call: Callable[[], _T]) -> _T:
        try:
            return self._call(call)
        except PluginError as exc:
            cause = exc.__cause__
            if isinstance(cause, ApiException) and cause.status == 404:
                raise BroadcastNotFound(
                    f'broadcast "{name}" not found in namespace "{namespace}"'
                ) from cause
            raise

    def list(self, namespace: str | None) -> list[dict[str, Any]]:
        """Broadcasts of one namespace, or of all of them (None)."""
        objects = client.CustomObjectsApi(self.api)
        body: Any = self._call(
            (lambda: objects.list_cluster_custom_object(GROUP, VERSION, PLURAL))
            if namespace is None
            else (lambda: objects.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL))
        )
        return list(body.get("items", ()))

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        objects = client.CustomObjectsApi(self.api)
        body: Any = self._broadcast_call(
            namespace,
            name,
            lambda: objects.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name),
        )
        return dict(body)

    def set_paused(self, namespace: str, name: str, *, paused: bool) -> dict[str, Any]:
        # A merge patch of the one field: custom resources take no strategic merge patch, and
        # touching nothing else keeps a GitOps tool's diff to spec.paused alone.
        objects = client.CustomObjectsApi(self.api)
        body: Any = self._broadcast_call(
            namespace,
            name,
            lambda: objects.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                name,
                {"spec": {"paused": paused}},
                field_manager=FIELD_MANAGER,
                _content_type="application/merge-patch+json",
            ),
        )
        return dict(body)

    def bot_token(self, broadcast: Broadcast) -> SecretStr:
        """The token in the Secret that spec.botRef names, in the Broadcast's namespace."""
        namespace = broadcast.metadata.namespace or self.namespace
        ref = broadcast.spec.bot_ref
        core = client.CoreV1Api(self.api)
        try:
            secret = self._call(lambda: core.read_namespaced_secret(ref.name, namespace))
        except PluginError as exc:
            cause = exc.__cause__
            if isinstance(cause, ApiException) and cause.status == 404:
                raise PluginError(
                    f'Secret "{ref.name}" (spec.botRef of broadcast "{broadcast.metadata.name}") '
                    f'not found in namespace "{namespace}"'
                ) from cause
            raise
        raw = (secret.data or {}).get(ref.key)
        if raw is None:
            raise PluginError(
                f'Secret "{ref.name}" in namespace "{namespace}" has no key "{ref.key}" '
                "(spec.botRef.key)"
            )
        try:
            token = base64.b64decode(raw).decode().strip()
            subjects.bot_id_of(token)
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            raise PluginError(
                f'the value of key "{ref.key}" in Secret "{ref.name}" is not a bot token '
                "(<digits>:<secret>)"
            ) from exc
        return SecretStr(token)


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
    configuration = client.Configuration()
    try:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, context=context, client_configuration=configuration
        )
        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    except (config.ConfigException, OSError) as exc:
        where = kubeconfig or "$KUBECONFIG or ~/.kube/config"
        raise PluginError(f"cannot load the kubeconfig ({where}): {exc}") from exc
    chosen = next((c for c in contexts if c.get("name") == context), None) if context else active
    default_namespace = ((chosen or {}).get("context") or {}).get("namespace") or "default"
    return Cluster(
        api=client.ApiClient(configuration),
        namespace=namespace or default_namespace,
        server=str(configuration.host),
    )
