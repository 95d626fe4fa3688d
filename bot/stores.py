"""What the handlers need from the outside world, as small interfaces.

Handlers depend on these protocols only; :mod:`herald.bot.kubeapi` and
:mod:`herald.bot.postgres` implement them. Errors from the libraries are translated once, in
those adapters, into the exceptions below, so a handler knows three outcomes and no client.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from herald.bot.callbacks import BroadcastRef
from herald.core.broadcasts import Broadcast

__all__ = [
    "BroadcastExists",
    "BroadcastNotFound",
    "BroadcastStore",
    "LanguageCount",
    "StoreError",
    "SubscriberBook",
    "SubscriberProfile",
    "SubscriberStore",
]


class StoreError(Exception):
    """The API server refused or could not be reached; the message is safe to show admins."""


class BroadcastNotFound(StoreError):
    """No such Broadcast (never was, or already deleted)."""

    def __init__(self, namespace: str, name: str) -> None:
        super().__init__(f"{namespace}/{name}")
        self.namespace = namespace
        self.name = name


class BroadcastExists(StoreError):
    """A Broadcast of that name exists already."""


class BroadcastStore(Protocol):
    """Broadcasts as the Kubernetes API serves them, with the bot's own permissions."""

    async def list(self, namespaces: Sequence[str], *, bot: str | None = None) -> list[Broadcast]:
        """The Broadcasts of ``namespaces``; with ``bot``, only those naming that Bot."""

    async def get(self, ref: BroadcastRef) -> Broadcast: ...

    async def set_paused(self, ref: BroadcastRef, *, paused: bool) -> Broadcast: ...

    async def create(self, broadcast: Broadcast) -> Broadcast: ...

    async def delete(self, ref: BroadcastRef) -> None: ...


@dataclass(frozen=True, kw_only=True)
class SubscriberProfile:
    """What Telegram tells about a user, as stored in the subscriber table."""

    chat_id: int
    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    language_code: str | None = None


@dataclass(frozen=True, kw_only=True)
class LanguageCount:
    language_code: str
    subscribers: int


class SubscriberStore(Protocol):
    """The subscriber table as one bot sees it: its own subscribers, nobody else's."""

    async def subscribe(self, profile: SubscriberProfile) -> None:
        """Insert or refresh the subscriber and make them active (they said /start)."""

    async def refresh(self, profile: SubscriberProfile) -> None:
        """Refresh a known subscriber's profile; unknown users are not subscribed by it."""

    async def set_active(self, profile: SubscriberProfile, *, active: bool) -> None:
        """Record that the user blocked the bot (inactive) or came back (active)."""

    async def language_of(self, chat_id: int) -> str | None:
        """The user's last known language_code, if they are a subscriber."""

    async def count_active(self) -> int: ...

    async def broadcast_of(self, uid: str) -> BroadcastRef | None:
        """The Broadcast of this bot with that uid, as the ledger knows it; ``None`` if none."""

    async def record_click(
        self, *, broadcast_uid: str, chat_id: int, callback: str, tag: str | None
    ) -> bool:
        """Record a press and add `tag` to the chat's subscriber, once; whether it was new."""

    async def active_languages(self, *, limit: int) -> list[LanguageCount]:
        """The most common languages of active subscribers, most common first."""


class SubscriberBook(Protocol):
    """The subscriber table, by bot: each bot has its own subscribers."""

    def of(self, bot_id: int) -> SubscriberStore:
        """The subscribers of the bot with this id (the one Telegram's getMe returns)."""
