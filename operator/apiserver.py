"""The operator's calls to the API server for Herald's own objects: token Secrets, Broadcast
status, the list of live Broadcasts. Blocking client calls, each bounded by
``_request_timeout``; callers run them through :meth:`Connections.kubernetes`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from herald.core.broadcasts import GROUP, PLURAL, VERSION
from herald.core.statuses import BroadcastStatus

__all__ = ["FIELD_MANAGER", "live_uids", "patch_status", "read_secret"]

# One stable name, so `kubectl get -o yaml --show-managed-fields` says who set a field and
# an HPA or Argo CD can be told to leave this manager's fields alone.
FIELD_MANAGER = "herald-operator"


def read_secret(
    api: client.ApiClient, namespace: str, name: str, *, timeout: float
) -> dict[str, str] | None:
    """A Secret's (base64) data; None when there is no such Secret."""
    try:
        secret = client.CoreV1Api(api).read_namespaced_secret(
            name, namespace, _request_timeout=timeout
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return {k: str(v) for k, v in (secret.data or {}).items()}


def patch_status(
    api: client.ApiClient, namespace: str, name: str, status: BroadcastStatus, *, timeout: float
) -> None:
    client.CustomObjectsApi(api).patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        name,
        {"status": status.model_dump(mode="json")},
        field_manager=FIELD_MANAGER,
        _content_type="application/merge-patch+json",
        _request_timeout=timeout,
    )


def live_uids(api: client.ApiClient, namespaces: Iterable[str], *, timeout: float) -> set[str]:
    """The uids of every Broadcast in ``namespaces`` (none: the whole cluster)."""
    objects = client.CustomObjectsApi(api)
    watched = list(namespaces)
    if watched:
        pages = [
            objects.list_namespaced_custom_object(
                GROUP, VERSION, ns, PLURAL, _request_timeout=timeout
            )
            for ns in watched
        ]
    else:
        pages = [
            objects.list_cluster_custom_object(GROUP, VERSION, PLURAL, _request_timeout=timeout)
        ]
    listed = cast("list[dict[str, Any]]", pages)
    return {item["metadata"]["uid"] for page in listed for item in page["items"]}
