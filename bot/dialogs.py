"""Where the creation dialogs keep their state: in memory, bounded in number and in time.

aiogram's MemoryStorage keeps a record for every chat it is asked about, and the FSM asks
about every update's chat, so it grows with every user who ever wrote to any bot served, and
a dialog abandoned half-way stays forever. :class:`DialogStorage` keeps only dialogs (a state
or data was set), forgets one ``ttl`` seconds after its last step, and holds at most
``capacity``, forgetting the least recently advanced first. A forgotten dialog's buttons answer
that it expired; the admin forwards the post again.

In memory, because one process serves a bot (polling allows no other) and a dialog lost to a
restart costs an admin one forward. Keys carry the bot id, so two bots' dialogs with one admin
stay apart.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiogram.exceptions import DataNotDictLikeError
from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, StateType, StorageKey

__all__ = ["DialogStorage"]


@dataclass
class _Dialog:
    advanced_at: float
    state: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


class DialogStorage(BaseStorage):
    def __init__(
        self, *, capacity: int, ttl: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._capacity = capacity
        self._ttl = ttl
        self._clock = clock
        # Oldest step first: expiry and eviction both take from the front.
        self._dialogs: OrderedDict[StorageKey, _Dialog] = OrderedDict()

    def __len__(self) -> int:
        return len(self._dialogs)

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        dialog = self._current(key)
        self._keep(key, value, dialog.data if dialog else {})

    async def get_state(self, key: StorageKey) -> str | None:
        dialog = self._current(key)
        return dialog.state if dialog else None

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        if not isinstance(data, dict):
            raise DataNotDictLikeError(
                f"Data must be a dict or dict-like object, got {type(data).__name__}"
            )
        dialog = self._current(key)
        self._keep(key, dialog.state if dialog else None, data.copy())

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        dialog = self._current(key)
        return dialog.data.copy() if dialog else {}

    async def close(self) -> None:
        self._dialogs.clear()

    def _current(self, key: StorageKey) -> _Dialog | None:
        """The dialog under ``key`` unless it expired; reading it does not keep it alive."""
        self._expire(self._clock())
        return self._dialogs.get(key)

    def _keep(self, key: StorageKey, state: str | None, data: dict[str, Any]) -> None:
        if state is None and not data:
            # A cleared dialog is no dialog: nothing to remember.
            self._dialogs.pop(key, None)
            return
        self._dialogs[key] = _Dialog(advanced_at=self._clock(), state=state, data=data)
        self._dialogs.move_to_end(key)
        while len(self._dialogs) > self._capacity:
            self._dialogs.popitem(last=False)

    def _expire(self, now: float) -> None:
        while self._dialogs:
            key, oldest = next(iter(self._dialogs.items()))
            if now - oldest.advanced_at < self._ttl:
                return
            del self._dialogs[key]
