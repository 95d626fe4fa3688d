"""Broadcasts through the Kubernetes API, with the bot's own ServiceAccount and field manager.

The official client is synchronous; each call runs in a worker thread so the event loop keeps
answering Telegram. ``ApiException`` is translated here, once, into :mod:`herald.bot.stores`
errors.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from herald.bot.callbacks import BroadcastRef
from herald.bot.manifests import manifest
from herald.bot.stores import BroadcastExists, BroadcastNotFound, StoreError
from herald.core.broadcasts import GROUP, PLURAL, VERSION, Broadcast
from herald.core.kubeapi import api_message

__all__ = ["FIELD_MANAGER", "KubernetesBroadcasts", "load_configuration"]

# One stable manager name: `--show-managed-fields` tells who paused a Broadcast, and an Argo
# CD ignoreDifferences rule can name this manager to leave the bot's pause alone.
FIELD_MANAGER = "herald-bot"

_T = TypeVar("_T")


def load_configuration() -> client.Configuration:
    """In the cluster, the pod's ServiceAccount; elsewhere KUBECONFIG, as kubectl does."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    return configuration


class KubernetesBroadcasts:
    """:class:`herald.bot.stores.BroadcastStore` on the API server."""

    def __init__(self, api: client.ApiClient) -> None:
        self._objects = client.CustomObjectsApi(api)

    async def _call(self, call: Callable[[], _T], ref: BroadcastRef | None = None) -> _T:
        try:
            return await asyncio.to_thread(call)
        except ApiException as exc:
            if exc.status == 404 and ref is not None:
                raise BroadcastNotFound(ref.namespace, ref.name) from exc
            if exc.status == 409:
                raise BroadcastExists(api_message(exc)) from exc
            raise StoreError(api_message(exc)) from exc

    async def list(self, namespaces: Sequence[str]) -> list[Broadcast]:
        found: list[Broadcast | None] = []
        for namespace in namespaces:
            body: Any = await self._call(
                functools.partial(
                    self._objects.list_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL
                )
            )
            found.extend(_parsed(item) for item in body.get("items", ()))
        return [broadcast for broadcast in found if broadcast is not None]

    async def get(self, ref: BroadcastRef) -> Broadcast:
        body: Any = await self._call(
            lambda: self._objects.get_namespaced_custom_object(
                GROUP, VERSION, ref.namespace, PLURAL, ref.name
            ),
            ref,
        )
        return _required(body, ref)

    async def set_paused(self, ref: BroadcastRef, *, paused: bool) -> Broadcast:
        # A merge patch of the one field: custom resources take no strategic merge patch, and
        # touching nothing else keeps GitOps tools' diffs to spec.paused alone.
        body: Any = await self._call(
            lambda: self._objects.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                ref.namespace,
                PLURAL,
                ref.name,
                {"spec": {"paused": paused}},
                field_manager=FIELD_MANAGER,
                _content_type="application/merge-patch+json",
            ),
            ref,
        )
        return _required(body, ref)

    async def create(self, broadcast: Broadcast) -> Broadcast:
        namespace = broadcast.metadata.namespace or ""
        ref = BroadcastRef(namespace=namespace, name=broadcast.metadata.name or "")
        body: Any = await self._call(
            lambda: self._objects.create_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, manifest(broadcast), field_manager=FIELD_MANAGER
            ),
        )
        return _required(body, ref)

    async def delete(self, ref: BroadcastRef) -> None:
        await self._call(
            lambda: self._objects.delete_namespaced_custom_object(
                GROUP, VERSION, ref.namespace, PLURAL, ref.name
            ),
            ref,
        )


def _parsed(body: Any) -> Broadcast | None:
    try:
        return Broadcast.model_validate(body)
    except ValidationError:
        # An object the API server accepted but this version cannot read (a newer field):
        # leave it out of the bot's view rather than fail the whole list.
        return None


def _required(body: Any, ref: BroadcastRef) -> Broadcast:
    broadcast = _parsed(body)
    if broadcast is None:
        raise StoreError(f"{ref.namespace}/{ref.name} is not a Broadcast this bot can read")
    return broadcast
