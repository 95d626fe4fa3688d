"""Broadcasts through the Kubernetes API, with the bot's own ServiceAccount and field manager.

The calls are :mod:`herald.kube`'s, each in a worker thread so the event loop keeps
answering Telegram. Its errors are translated here, once, into :mod:`herald.bot.stores`
errors.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from kubernetes import client
from pydantic import ValidationError

from herald.bot.callbacks import BroadcastRef
from herald.bot.manifests import manifest
from herald.bot.stores import BroadcastExists, BroadcastNotFound, StoreError
from herald.core.broadcasts import Broadcast
from herald.kube.broadcasts import AsyncBroadcasts, Broadcasts
from herald.kube.errors import Conflict, KubeError, NotFound

__all__ = ["FIELD_MANAGER", "KubernetesBroadcasts"]

# One stable manager name: `--show-managed-fields` tells who paused a Broadcast, and an Argo
# CD ignoreDifferences rule can name this manager to leave the bot's pause alone.
FIELD_MANAGER = "herald-bot"


@contextlib.contextmanager
def _translated(ref: BroadcastRef | None = None) -> Iterator[None]:
    try:
        yield
    except NotFound as exc:
        if ref is None:
            raise StoreError(str(exc)) from exc
        raise BroadcastNotFound(ref.namespace, ref.name) from exc
    except Conflict as exc:
        raise BroadcastExists(str(exc)) from exc
    except KubeError as exc:
        raise StoreError(str(exc)) from exc


class KubernetesBroadcasts:
    """:class:`herald.bot.stores.BroadcastStore` on the API server."""

    def __init__(self, api: client.ApiClient) -> None:
        self._broadcasts = AsyncBroadcasts(Broadcasts(api, field_manager=FIELD_MANAGER))

    async def list(self, namespaces: Sequence[str], *, bot: str | None = None) -> list[Broadcast]:
        with _translated():
            items = await self._broadcasts.items(namespaces, bot=bot)
        found = [_parsed(item) for item in items]
        return [broadcast for broadcast in found if broadcast is not None]

    async def get(self, ref: BroadcastRef) -> Broadcast:
        with _translated(ref):
            body = await self._broadcasts.get(ref.namespace, ref.name)
        return _required(body, ref)

    async def set_paused(self, ref: BroadcastRef, *, paused: bool) -> Broadcast:
        with _translated(ref):
            body = await self._broadcasts.set_paused(ref.namespace, ref.name, paused=paused)
        return _required(body, ref)

    async def create(self, broadcast: Broadcast) -> Broadcast:
        namespace = broadcast.metadata.namespace or ""
        ref = BroadcastRef(namespace=namespace, name=broadcast.metadata.name or "")
        with _translated():
            body = await self._broadcasts.create(namespace, manifest(broadcast))
        return _required(body, ref)

    async def delete(self, ref: BroadcastRef) -> None:
        with _translated(ref):
            await self._broadcasts.delete(ref.namespace, ref.name)


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
