"""Work messages: which ones a sender can use, and when one is done. Pure.

A work message that cannot be decoded, or that names a broadcast other than the consumer's,
will never become usable by waiting: it is terminated (never redelivered) and counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from herald.core.envelopes import DecodeError, Recipient, WorkBatch, decode

__all__ = ["BadWork", "Progress", "parse"]


@dataclass(frozen=True, slots=True)
class BadWork:
    reason: str  # a short word for the metric's label: undecodable, foreign, empty


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
