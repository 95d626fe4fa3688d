"""Herald's Broadcasts on the API server: get, list, create, delete, pause, status.

The official client blocks. :class:`Broadcasts` makes the calls (each bounded by ``timeout``
when one is given, so a worker thread never outlives the wait on it); a caller on an event
loop runs them in a thread, as :class:`AsyncBroadcasts` does or through its own bounded wait.
Objects come back as the API server sent them: what a component cannot read is its call.
Every refusal is a :class:`~herald.kube.errors.KubeError`.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kubernetes import client

from herald.core.broadcasts import GROUP, PLURAL, VERSION
from herald.core.statuses import BroadcastStatus
from herald.kube.errors import translated

__all__ = ["AsyncBroadcasts", "Broadcasts"]

_MERGE_PATCH = "application/merge-patch+json"

Body = dict[str, Any]


class Broadcasts:
    """Broadcasts as one field manager writes them.

    ``field_manager`` is the name ``kubectl get --show-managed-fields`` shows for what this
    client sets; each component keeps its own stable one, so an Argo CD ignoreDifferences
    rule or an HPA can name it.
    """

    def __init__(
        self, api: client.ApiClient, *, field_manager: str, timeout: float | None = None
    ) -> None:
        self._objects = client.CustomObjectsApi(api)
        self.field_manager = field_manager
        self.timeout = timeout

    def get(self, namespace: str, name: str) -> Body:
        with translated():
            body: Any = self._objects.get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, _request_timeout=self.timeout
            )
        return dict(body)

    def items(
        self, namespaces: Iterable[str] | None = None, *, bot: str | None = None
    ) -> list[Body]:
        """Every Broadcast of ``namespaces``, one namespace after the other; None: of the
        whole cluster, in one call. With ``bot``, only those whose botRef names it, chosen
        by the API server (the CRD's selectable field)."""
        objects = self._objects
        selector = None if bot is None else f"spec.botRef.name={bot}"
        lists = (
            [functools.partial(objects.list_cluster_custom_object, GROUP, VERSION, PLURAL)]
            if namespaces is None
            else [
                functools.partial(objects.list_namespaced_custom_object, GROUP, VERSION, ns, PLURAL)
                for ns in namespaces
            ]
        )
        found: list[Body] = []
        for call in lists:
            with translated():
                page: Any = call(_request_timeout=self.timeout, field_selector=selector)
            found.extend(page.get("items", ()))
        return found

    def live_uids(self, namespaces: Iterable[str] | None = None) -> set[str]:
        """The uids of every Broadcast of ``namespaces`` (None: of the whole cluster)."""
        return {item["metadata"]["uid"] for item in self.items(namespaces)}

    def create(self, namespace: str, manifest: Mapping[str, Any]) -> Body:
        with translated():
            body: Any = self._objects.create_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                dict(manifest),
                field_manager=self.field_manager,
                _request_timeout=self.timeout,
            )
        return dict(body)

    def delete(self, namespace: str, name: str) -> None:
        with translated():
            self._objects.delete_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, _request_timeout=self.timeout
            )

    def set_paused(self, namespace: str, name: str, *, paused: bool) -> Body:
        # A merge patch of the one field: custom resources take no strategic merge patch, and
        # touching nothing else keeps a GitOps tool's diff to spec.paused alone.
        with translated():
            body: Any = self._objects.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                name,
                {"spec": {"paused": paused}},
                field_manager=self.field_manager,
                _content_type=_MERGE_PATCH,
                _request_timeout=self.timeout,
            )
        return dict(body)

    def patch_status(self, namespace: str, name: str, status: BroadcastStatus) -> None:
        with translated():
            self._objects.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                name,
                {"status": status.model_dump(mode="json")},
                field_manager=self.field_manager,
                _content_type=_MERGE_PATCH,
                _request_timeout=self.timeout,
            )


class AsyncBroadcasts:
    """:class:`Broadcasts` for an event loop: each call in a worker thread, so the loop goes
    on answering while the API server does."""

    def __init__(self, broadcasts: Broadcasts) -> None:
        self.blocking = broadcasts

    async def get(self, namespace: str, name: str) -> Body:
        return await asyncio.to_thread(self.blocking.get, namespace, name)

    async def items(
        self, namespaces: Sequence[str] | None = None, *, bot: str | None = None
    ) -> list[Body]:
        return await asyncio.to_thread(functools.partial(self.blocking.items, namespaces, bot=bot))

    async def create(self, namespace: str, manifest: Mapping[str, Any]) -> Body:
        return await asyncio.to_thread(self.blocking.create, namespace, manifest)

    async def delete(self, namespace: str, name: str) -> None:
        await asyncio.to_thread(self.blocking.delete, namespace, name)

    async def set_paused(self, namespace: str, name: str, *, paused: bool) -> Body:
        return await asyncio.to_thread(self.blocking.set_paused, namespace, name, paused=paused)
