"""The Broadcast an admin creates by forwarding a post: built and validated here, no I/O.

The model is validated against the same pydantic contract the CRD is generated from, so a
choice the API server would refuse fails here first, with the same message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from herald.bot.callbacks import AUDIENCE_ALL
from herald.core.audiences import Audience, SubscriberSelector
from herald.core.broadcasts import (
    FREE_MESSAGES_PER_SECOND,
    BotRef,
    Broadcast,
    BroadcastSpec,
    ObjectMeta,
    Rate,
)
from herald.core.contents import Content, CopyFrom

__all__ = [
    "CREATED_BY_LABEL",
    "RATE_CHOICES",
    "ForwardedPost",
    "broadcast_name",
    "manifest",
    "new_broadcast",
]

# Offered as buttons; 25 is the contract's default, 30 Telegram's free ceiling per bot.
RATE_CHOICES = (5, 10, 25, FREE_MESSAGES_PER_SECOND)
# Says on the object who asked for it; label values allow digits only as a user id here.
CREATED_BY_LABEL = "herald.dev/created-by-telegram-user"
_MANAGED_BY = "app.kubernetes.io/managed-by"


@dataclass(frozen=True, kw_only=True)
class ForwardedPost:
    """The admin's copy of the post, in the admin's own chat with the bot."""

    chat_id: int
    message_id: int
    admin_id: int


def broadcast_name(post: ForwardedPost) -> str:
    """A name derived from the post, so confirming the same post twice (a double tap, a
    retried update) meets the existing Broadcast instead of sending it twice."""
    return f"post-{post.chat_id}-{post.message_id}"


def new_broadcast(
    post: ForwardedPost,
    *,
    namespace: str,
    bot_ref: str,
    audience: str,
    messages_per_second: int,
) -> Broadcast:
    """The Broadcast that copies ``post`` to ``audience`` (``all`` or a language code),
    sent by the bot ``bot_ref`` names (the admin's Bot, or the older form's Secret).

    copyFrom points at the admin's chat: copyMessage then sends exactly what the admin saw,
    without the "forwarded from" header, whatever the post's origin (a channel the bot is
    not in, a private user)."""
    selector = (
        SubscriberSelector()
        if audience == AUDIENCE_ALL
        else SubscriberSelector(languages=(audience,))
    )
    return Broadcast(
        metadata=ObjectMeta(
            name=broadcast_name(post),
            namespace=namespace,
            labels={_MANAGED_BY: "herald-bot", CREATED_BY_LABEL: str(post.admin_id)},
        ),
        spec=BroadcastSpec(
            bot_ref=BotRef(name=bot_ref),
            content=Content(copy_from=CopyFrom(chat_id=post.chat_id, message_id=post.message_id)),
            audience=Audience(subscribers=selector),
            rate=Rate(messages_per_second=messages_per_second),
        ),
    )


def manifest(broadcast: Broadcast) -> dict[str, Any]:
    """The object as the API server takes it: wire names, no empty fields, no status."""
    return broadcast.model_dump(mode="json", exclude_none=True, exclude={"status"})
