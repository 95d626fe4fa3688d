"""Transactional messages: one message to one chat, defined once.

An application POSTs a :class:`MessageRequest` to herald-api, which keeps it as a row of the
``messages`` table (migration 0005) and queues a
:class:`~herald.core.envelopes.MessageWork` on ``herald.messages.<bot id>`` for the sender that
holds the bot. The sender claims the row, sends it ahead of the bot's broadcasts, records the
outcome and announces it with a :class:`~herald.core.envelopes.MessageOutcome` on
``herald.outcomes.<bot id>`` (core NATS, not kept: whoever waits for it also reads the row).
herald-api keeps a :class:`~herald.core.envelopes.BotTraffic` record per bot so that senders
hold the bot, and the operator keeps a sender running, while messages come.

The HTTP bodies (:class:`MessageRequest`, :class:`MessageView`) use the Broadcast's
:class:`~herald.core.contents.Content` as it is, so the API's OpenAPI document and the CRD
describe one model.
"""

from __future__ import annotations

import enum
import hashlib
from datetime import datetime

import ormsgpack
from pydantic import AwareDatetime, Field, field_validator

from herald.core.contents import Content
from herald.core.contracts import WireModel
from herald.core.deliveries import DeliveryState

__all__ = [
    "FINAL_STATES",
    "IDEMPOTENCY_KEY_MAX_LENGTH",
    "RESOURCE",
    "MessageRequest",
    "MessageState",
    "MessageView",
    "fingerprint",
    "state_of",
]

IDEMPOTENCY_KEY_MAX_LENGTH = 255
# What a Role grants an application (API group herald.dev, resourceNames: the Bots): verb
# create to send, get to read. No API server serves it; herald-api asks for it by
# SubjectAccessReview.
RESOURCE = "messages"
_CALLBACK_URL_MAX_LENGTH = 2048


class MessageState(enum.StrEnum):
    """A message's state as the API shows it: a claimed row is still pending to its sender."""

    PENDING = "pending"
    DELIVERED = "delivered"
    BLOCKED = "blocked"
    FAILED = "failed"
    UNCERTAIN = "uncertain"


FINAL_STATES = frozenset(
    {MessageState.DELIVERED, MessageState.BLOCKED, MessageState.FAILED, MessageState.UNCERTAIN}
)


def state_of(row_state: str) -> MessageState:
    """The API's word for a ``messages.state``."""
    state = DeliveryState(row_state)
    if state in (DeliveryState.PENDING, DeliveryState.CLAIMED):
        return MessageState.PENDING
    return MessageState(state.value)


class MessageRequest(WireModel):
    """The body of ``POST /v1/namespaces/{namespace}/bots/{bot}/messages``."""

    chat_id: int = Field(
        description="The Telegram chat to send to (a user id for a private chat); not 0.",
        ge=-(2**63),
        le=2**63 - 1,
        json_schema_extra={"format": "int64"},
    )
    content: Content = Field(description="What to send: the Broadcast's content model.")
    deadline: AwareDatetime | None = Field(
        default=None,
        description="RFC 3339. Never send after it: a message still queued then ends failed "
        "with reason DeadlineExceeded.",
    )
    callback_url: str | None = Field(
        default=None,
        max_length=_CALLBACK_URL_MAX_LENGTH,
        pattern=r"^https?://\S+$",
        description="Where to POST the final state, signed with the Bot's callback secret "
        "(header Herald-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.<body>'>).",
    )

    @field_validator("chat_id")
    @classmethod
    def _a_chat(cls, chat_id: int) -> int:
        # No Telegram chat has id 0 (the table refuses it too): a client that sends it sent
        # an unset field.
        if chat_id == 0:
            raise ValueError("chatId must not be 0: no Telegram chat has that id")
        return chat_id


def fingerprint(request: MessageRequest) -> bytes:
    """SHA-256 of the request's canonical form: equal for the same message however the JSON
    was spelled (key order, spacing, aliases), different for any other message."""
    canonical = request.model_dump(mode="json", by_alias=True, exclude_none=True)
    return hashlib.sha256(ormsgpack.packb(canonical, option=ormsgpack.OPT_SORT_KEYS)).digest()


class MessageView(WireModel):
    """A message as ``GET .../messages/{id}`` (and the POST's answer) shows it."""

    id: str = Field(description="Herald's id of the message (a UUID).")
    state: MessageState
    reason: str | None = Field(default=None, description="Why it ended failed or blocked.")
    message_id: int | None = Field(
        default=None, description="Telegram's message id, once delivered."
    )
    chat_id: int
    created_at: datetime
    sent_at: datetime | None = None
