"""The delivery ledger's vocabulary: recipient states and the reasons that end them."""

from __future__ import annotations

import enum

__all__ = ["RECALL_WINDOW_HOURS", "TERMINAL_STATES", "Amendment", "DeliveryState"]


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
