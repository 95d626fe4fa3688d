"""The delivery ledger's vocabulary: recipient states and the reasons that end them."""

from __future__ import annotations

import enum

__all__ = ["TERMINAL_STATES", "DeliveryState"]


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
