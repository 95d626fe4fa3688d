"""Work messages: which ones a sender can use, and when one is done. Pure.

A work message that cannot be decoded, that names a broadcast other than the consumer's, or a
chat id no ledger row can have, will never become usable by waiting: it is terminated (never
redelivered) and counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from herald.core.envelopes import DecodeError, Recipient, WorkBatch, decode

__all__ = ["BadWork", "Progress", "parse"]


# The ledger's chat_id is a Postgres bigint.
_INT64 = 2**63


@dataclass(frozen=True, slots=True)
class BadWork:
    reason: str  # a short word for the metric's label: undecodable, invalid, foreign, empty


def parse(data: bytes, *, uid: str) -> WorkBatch | BadWork:
    """The batch in `data`, pulled from broadcast `uid`'s consumer; never raises."""
    try:
        batch = decode(WorkBatch, data)
    except DecodeError:
        return BadWork("undecodable")
    except Exception:
        return BadWork("undecodable")
    if batch.uid != uid:
        return BadWork("foreign")
    if not batch.recipients:
        return BadWork("empty")
    if any(not -_INT64 <= recipient.chat_id < _INT64 for recipient in batch.recipients):
        # No ledger row can have such a chat id, and a claim naming it fails as a whole,
        # again and again: one such message would stall the broadcast.
        return BadWork("invalid")
    return batch


@dataclass(slots=True)
class Progress:
    """Which rows of one work message still lack a terminal state in the ledger."""

    recipients: dict[int, Recipient]
    open: set[int] = field(default_factory=set)
    # Rows another live sender claimed: the message goes back for a later look.
    busy: set[int] = field(default_factory=set)

    @classmethod
    def of(cls, batch: WorkBatch) -> Progress:
        recipients = {recipient.chat_id: recipient for recipient in batch.recipients}
        return cls(recipients, set(recipients))

    def settle(self, chat_ids: Iterable[int]) -> None:
        self.open.difference_update(chat_ids)

    def mark_busy(self, chat_ids: Iterable[int]) -> None:
        self.busy.update(chat_ids)

    @property
    def done(self) -> bool:
        """Every row terminal: the message can be acked."""
        return not self.open

    @property
    def stuck(self) -> bool:
        """Only rows held by others are open: nothing more to do here for now."""
        return bool(self.open) and self.open <= self.busy
