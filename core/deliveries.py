"""The delivery ledger's vocabulary: recipient states and the reasons that end them."""

from __future__ import annotations

import enum

__all__ = ["TERMINAL_STATES", "DeliveryState"]


class DeliveryState(enum.StrEnum):
    """One recipient of one broadcast. Matches the CHECK constraint of ``deliveries.state``."""

    PENDING = "pending"  # materialised, not yet claimed by a sender
    CLAIMED = "claimed"  # a sender took it and may be sending right now
    DELIVERED = "delivered"
    BLOCKED = "blocked"  # 403: blocked the bot or deactivated; the subscriber turns inactive
    FAILED = "failed"  # permanent error, reason kept
    UNCERTAIN = "uncertain"  # claimed, then the sender died or timed out: maybe delivered


TERMINAL_STATES = frozenset(
    {
        DeliveryState.DELIVERED,
        DeliveryState.BLOCKED,
        DeliveryState.FAILED,
        DeliveryState.UNCERTAIN,
    }
)
