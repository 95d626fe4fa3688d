"""Bot leases: which replica sends for a bot. Pure decisions; :mod:`herald.sender.controls`
performs them on the KV bucket with compare-and-set.

One replica at a time sends for a bot, so that replica alone enforces the bot's limit and
each broadcast's rate, exactly, without coordinating per message. The holder renews its lease
often (a fifth of its validity); a lease not renewed in time has expired and any replica may
take it, but only with the revision it read, so two replicas racing for it cannot both win.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from herald.core.envelopes import Lease

__all__ = ["LeaseStep", "Move", "plan"]


class Move(enum.StrEnum):
    CREATE = "create"  # no lease: create the key (fails if someone was faster)
    TAKE = "take"  # expired lease of another replica: update at its revision
    RENEW = "renew"  # our own lease: update at its revision
    WAIT = "wait"  # another replica holds it


@dataclass(frozen=True, slots=True)
class LeaseStep:
    move: Move
    lease: Lease | None  # what to write, for every move but WAIT


def plan(
    current: Lease | None, *, bot_id: str, me: str, now: datetime, seconds: float
) -> LeaseStep:
    """What to do about the lease of `bot_id`, given the stored one (None: no key)."""
    mine = Lease(bot_id=bot_id, holder=me, expires=now + timedelta(seconds=seconds))
    if current is None:
        return LeaseStep(Move.CREATE, mine)
    if current.holder == me:
        return LeaseStep(Move.RENEW, mine)
    if current.expires <= now:
        return LeaseStep(Move.TAKE, mine)
    return LeaseStep(Move.WAIT, None)
