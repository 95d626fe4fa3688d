"""Status messages that keep themselves current: the bot edits them as a Broadcast advances.

Each tracked message is edited at most once per ``interval`` seconds and only when its text
changed (Telegram limits edits per chat and answers an unchanged edit with an error); it stops
being tracked when its Broadcast ends or disappears, and only the newest ``capacity`` messages
are tracked at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.types import InlineKeyboardMarkup

from herald.bot.callbacks import BroadcastRef
from herald.bot.keyboards import markup
from herald.bot.stores import BroadcastNotFound, BroadcastStore, StoreError
from herald.bot.translations import Texts
from herald.bot.views import is_terminal, status_keyboard, status_text
from herald.core import probes
from herald.core.broadcasts import Broadcast

__all__ = ["LiveStatus", "Rendered"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rendered:
    text: str
    markup: InlineKeyboardMarkup | None


@dataclass
class _Tracked:
    ref: BroadcastRef
    texts: Texts
    text: str
    edited_at: float


class LiveStatus:
    def __init__(
        self,
        bot: Bot,
        broadcasts: BroadcastStore,
        *,
        default_namespace: str,
        interval: float,
        capacity: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._bot = bot
        self._broadcasts = broadcasts
        self._default_namespace = default_namespace
        self._interval = interval
        self._capacity = capacity
        self._clock = clock
        self._tracked: OrderedDict[tuple[int, int], _Tracked] = OrderedDict()
        self._task: asyncio.Task[None] | None = None

    def render(self, broadcast: Broadcast, texts: Texts) -> Rendered:
        text = status_text(
            broadcast,
            texts=texts,
            default_namespace=self._default_namespace,
            now=datetime.now(UTC),
        )
        keyboard = status_keyboard(
            broadcast, texts=texts, default_namespace=self._default_namespace
        )
        return Rendered(text, markup(keyboard))

    def track(
        self, *, chat_id: int, message_id: int, broadcast: Broadcast, texts: Texts, text: str
    ) -> None:
        """Keep the message current from now on (or note that it was just edited)."""
        key = (chat_id, message_id)
        if is_terminal(broadcast):
            self._tracked.pop(key, None)
            return
        ref = BroadcastRef(
            namespace=broadcast.metadata.namespace or "", name=broadcast.metadata.name or ""
        )
        self._tracked[key] = _Tracked(ref, texts, text, self._clock())
        self._tracked.move_to_end(key)
        while len(self._tracked) > self._capacity:
            self._tracked.popitem(last=False)

    def forget(self, *, chat_id: int, message_id: int) -> None:
        self._tracked.pop((chat_id, message_id), None)

    @property
    def tracked(self) -> int:
        return len(self._tracked)

    @property
    def failure(self) -> str | None:
        return probes.failure_of(self._task, "live status")

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="herald-bot-live-status")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self._interval))
            try:
                await self.update_due()
            except Exception:
                logger.exception("Live status update failed; trying again next round")

    async def update_due(self) -> None:
        """Edit every tracked message whose interval has passed and whose text changed."""
        now = self._clock()
        for key, entry in list(self._tracked.items()):
            if now - entry.edited_at < self._interval:
                continue
            entry.edited_at = now
            try:
                broadcast = await self._broadcasts.get(entry.ref)
            except BroadcastNotFound:
                self._tracked.pop(key, None)
                continue
            except StoreError:
                continue  # the API server is busy or away: try again next interval
            rendered = self.render(broadcast, entry.texts)
            if rendered.text != entry.text:
                chat_id, message_id = key
                try:
                    await self._bot.edit_message_text(
                        text=rendered.text,
                        chat_id=chat_id,
                        message_id=message_id,
                        reply_markup=rendered.markup,
                    )
                except TelegramBadRequest:
                    # Deleted by the user, or too old to edit: nothing left to keep current.
                    self._tracked.pop(key, None)
                    continue
                except TelegramAPIError:
                    continue
                entry.text = rendered.text
            if is_terminal(broadcast):
                self._tracked.pop(key, None)
