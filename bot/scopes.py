"""What one served bot may see and do of Broadcasts.

A Bot acts on the Broadcasts of its namespace that name it in ``spec.botRef``; another Bot's
Broadcasts are not found, as if they were not there, so one bot's admins learn nothing of
another's. The older form's bot acts on every Broadcast of its namespaces, as it always did.
The handlers and the live status messages of a bot get its :class:`BotBroadcasts`; they never
see the process's unscoped store.
"""

from __future__ import annotations

from collections.abc import Sequence

from herald.bot.callbacks import BroadcastRef
from herald.bot.rosters import ServedBot
from herald.bot.stores import BroadcastNotFound, BroadcastStore, StoreError
from herald.core.broadcasts import Broadcast

__all__ = ["BotBroadcasts"]


class BotBroadcasts:
    """:class:`herald.bot.stores.BroadcastStore` as ``served`` may use it."""

    def __init__(self, store: BroadcastStore, served: ServedBot) -> None:
        self._store = store
        self._namespaces = served.namespaces
        # The API server chooses by botRef for lists (a selectable field of the CRD).
        self._bot = served.bot_ref if served.own_broadcasts_only else None

    async def list(self, namespaces: Sequence[str], *, bot: str | None = None) -> list[Broadcast]:
        mine = [namespace for namespace in namespaces if namespace in self._namespaces]
        return await self._store.list(mine, bot=self._bot if self._bot is not None else bot)

    async def get(self, ref: BroadcastRef) -> Broadcast:
        if ref.namespace not in self._namespaces:
            raise BroadcastNotFound(ref.namespace, ref.name)
        broadcast = await self._store.get(ref)
        if self._bot is not None and broadcast.spec.bot_ref.name != self._bot:
            raise BroadcastNotFound(ref.namespace, ref.name)
        return broadcast

    async def set_paused(self, ref: BroadcastRef, *, paused: bool) -> Broadcast:
        await self.get(ref)
        return await self._store.set_paused(ref, paused=paused)

    async def create(self, broadcast: Broadcast) -> Broadcast:
        namespace = broadcast.metadata.namespace or ""
        if namespace not in self._namespaces or (
            self._bot is not None and broadcast.spec.bot_ref.name != self._bot
        ):
            raise StoreError(f"this bot creates Broadcasts in {self._namespaces[0]} only")
        return await self._store.create(broadcast)

    async def delete(self, ref: BroadcastRef) -> None:
        await self.get(ref)
        await self._store.delete(ref)
