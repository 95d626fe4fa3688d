"""The delivery ledger's vocabulary: recipient states, and the row as herald-api serves it
(:class:`LedgerRow`, read by ``kubectl broadcast ledger`` too)."""

from __future__ import annotations

import enum
from datetime import datetime

from pydantic import Field

from herald.core.contracts import WireModel

__all__ = [
    "CSV",
    "LEDGER_COLUMNS",
    "LEDGER_RESOURCE",
    "LEDGER_SUBRESOURCE",
    "NDJSON",
    "RECALL_WINDOW_HOURS",
    "TERMINAL_STATES",
    "Amendment",
    "DeliveryState",
    "LedgerRow",
    "csv_values",
]


class DeliveryState(enum.StrEnum):
    """One recipient of one broadcast. Matches the CHECK constraint of ``deliveries.state``."""

    PENDING = "pending"  # materialised, not yet claimed by a sender
    CLAIMED = "claimed"  # a sender took it; its request has not left
    SENDING = "sending"  # marked in the commit before its request left: may be on the wire
    DELIVERED = "delivered"
    BLOCKED = "blocked"  # 403: blocked the bot or deactivated; the subscriber turns inactive
    FAILED = "failed"  # permanent error, reason kept
    UNCERTAIN = "uncertain"  # sending, then the sender died or timed out: maybe delivered


TERMINAL_STATES = frozenset(
    {
        DeliveryState.DELIVERED,
        DeliveryState.BLOCKED,
        DeliveryState.FAILED,
        DeliveryState.UNCERTAIN,
    }
)


# Telegram lets a bot delete its own messages in private chats for 48 hours.
RECALL_WINDOW_HOURS = 48


class Amendment(enum.StrEnum):
    """What became of a delivered row's recall (``recall_outcome``) or correction
    (``correction_outcome``): what its chat sees now."""

    RECALLED = "recalled"  # deleted (or already gone): the chat no longer sees it
    TOO_OLD = "tooOld"  # past Telegram's 48 hours: it stays, no request was made
    CORRECTED = "corrected"  # edited (or already showing the correction)
    GONE = "gone"  # nothing to edit: the chat deleted it
    FAILED = "failed"  # Telegram refused; the reason is in the log and the metrics


# What a Role grants a reader of a Broadcast's ledger (API group herald.dev, resourceNames:
# the Broadcasts): verb get on the subresource deliveries of broadcasts. No API server serves
# it; herald-api asks for it by SubjectAccessReview, as for messages.
LEDGER_RESOURCE = "broadcasts"
LEDGER_SUBRESOURCE = "deliveries"
# The two forms herald-api streams the ledger in: JSON lines (one LedgerRow per line), or
# CSV with a header line of the wire names.
NDJSON = "application/x-ndjson"
CSV = "text/csv"


class LedgerRow(WireModel):
    """One recipient of one broadcast, as ``GET .../broadcasts/{name}/deliveries`` shows it:
    the ledger's row (table ``deliveries``) less what only the senders use (their lease)."""

    chat_id: int = Field(description="The recipient's Telegram chat id.")
    state: DeliveryState = Field(
        description="pending, claimed and sending are open; delivered, blocked, failed and "
        "uncertain are final (docs/semantics.md)."
    )
    reason: str | None = Field(
        default=None,
        description="Why it ended failed, blocked or uncertain, in Telegram's or Herald's words.",
    )
    message_id: int | None = Field(
        default=None, description="Telegram's message id in the chat, once delivered."
    )
    attempts: int = Field(description="Requests made for this recipient so far.")
    created_at: datetime = Field(description="When the audience was materialised.")
    claimed_at: datetime | None = Field(default=None, description="When a sender last took it.")
    finished_at: datetime | None = Field(default=None, description="When it reached its state.")
    message_ids: tuple[int, ...] | None = Field(
        default=None,
        description="Every message the send made (an album has one per item); the first is "
        "messageId.",
    )
    recall_outcome: Amendment | None = Field(
        default=None,
        description="spec.recall's outcome for a delivered row: recalled (deleted), tooOld "
        "(past Telegram's 48 hours, it stays) or failed; absent while not recalled.",
    )
    recalled_at: datetime | None = Field(default=None, description="When it was recalled.")
    correction_outcome: Amendment | None = Field(
        default=None,
        description="spec.correction's outcome for a delivered row: corrected, gone (the chat "
        "deleted it) or failed; absent when no edit was made.",
    )
    corrected_at: datetime | None = Field(default=None, description="When it was last edited.")


# The CSV header: the wire names, in the model's order.
LEDGER_COLUMNS: tuple[str, ...] = tuple(
    field.alias or name for name, field in LedgerRow.model_fields.items()
)


def csv_values(row: LedgerRow) -> list[str]:
    """The row's CSV cells, in :data:`LEDGER_COLUMNS` order: each as the JSON form writes it
    (timestamps RFC 3339), a list space-separated, an absent value empty."""
    wire = row.model_dump(mode="json")
    return [_cell(wire[column]) for column in LEDGER_COLUMNS]


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(str(item) for item in value)
    return str(value)
