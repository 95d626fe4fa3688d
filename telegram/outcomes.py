"""What became of one Bot API call, as Telegram answered it. Pure: the adapter
(:mod:`herald.telegram.client`) translates aiogram's answers and exceptions into an
:class:`Outcome` once, at the boundary; what to do about an outcome is the caller's decision.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "Outcome",
    "OutcomeKind",
    "is_chat_not_found",
    "is_content_error",
    "is_gone",
    "is_not_modified",
    "is_too_long",
    "is_too_old",
]

# Telegram's descriptions of content it cannot render: the same for every recipient, so the
# first of them stops the broadcast instead of failing each recipient in turn.
_CONTENT_ERRORS = (
    "can't parse entities",
    "can't parse reply keyboard markup",
    "can't find end of the entity",
    "unsupported start tag",
    "message text is empty",
    "message is too long",
    "message caption is too long",
    "unsupported parse_mode",
    "wrong file identifier",
    "wrong remote file identifier",
    "failed to get http url content",
    "wrong type of the web page content",
    "button_url_invalid",
    "message to copy not found",
    "there is no",
    # Albums, keyboards, link previews and effects: the same for every recipient too.
    "can't parse inputmedia",
    "can't be mixed with other media types",
    "too many messages to send as an album",
    "show_caption_above_media must be the same",
    "can't parse inline keyboard button",
    "inline keyboard button url",
    "button_data_invalid",
    "can't parse link preview options",
    "effect_id_invalid",
)
# Telegram's "message is too long" and "message caption is too long": content errors before
# the content was ever accepted; after, the placeholders of one recipient made it too long.
_TOO_LONG = ("message is too long", "caption is too long")


class OutcomeKind(enum.StrEnum):
    OK = "ok"
    RETRY_AFTER = "retry_after"  # 429
    FORBIDDEN = "forbidden"  # 403: blocked, deactivated, kicked
    BAD_REQUEST = "bad_request"  # 400
    UNAUTHORIZED = "unauthorized"  # 401: the token was revoked
    SERVER_ERROR = "server_error"  # 5xx: Telegram did not take the message
    NOT_SENT = "not_sent"  # the connection failed before the request went out
    MAYBE_SENT = "maybe_sent"  # timeout or cut connection after the request went out


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    kind: OutcomeKind
    message_id: int | None = None
    # Every message the call made (an album is one per item); message_id is the first.
    message_ids: tuple[int, ...] = ()
    retry_after: float | None = None
    description: str = ""


def is_content_error(description: str) -> bool:
    """Whether a 400 is about the message itself rather than about the recipient."""
    lowered = description.lower()
    return any(marker in lowered for marker in _CONTENT_ERRORS)


def is_too_long(description: str) -> bool:
    """Whether a 400 says the text or caption is over Telegram's limit."""
    lowered = description.lower()
    return any(marker in lowered for marker in _TOO_LONG)


def is_chat_not_found(description: str) -> bool:
    """Whether a 400 says a chat is unknown to the bot: the recipient's, or for copyMessage
    the source's too, which Telegram answers in the same words."""
    return "chat not found" in description.lower()


def is_gone(description: str) -> bool:
    """Whether a 400 to deleteMessage or editMessage* says there is no such message (deleted
    already, by the chat or by an earlier request)."""
    lowered = description.lower()
    return "message to delete not found" in lowered or "message to edit not found" in lowered


def is_too_old(description: str) -> bool:
    """Whether a 400 to deleteMessage says the message is past the time a bot may delete it."""
    return "message can't be deleted" in description.lower()


def is_not_modified(description: str) -> bool:
    """Whether a 400 to editMessage* says the message shows that content already."""
    return "message is not modified" in description.lower()
