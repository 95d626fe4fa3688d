"""Bot leases: which bots a replica wants, and which replica sends for a bot. Pure
decisions; :mod:`herald.sender.controls` performs them on the KV bucket with compare-and-set.

One replica at a time sends for a bot, so that replica alone enforces the bot's limit and
each broadcast's rate, exactly, without coordinating per message. The holder renews its lease
often (a fifth of its validity); a lease not renewed in time has expired and any replica may
take it, but only with the revision it read, so two replicas racing for it cannot both win.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from herald.core.envelopes import BroadcastState, ControlRecord, Lease

__all__ = ["LeaseStep", "Move", "plan", "wanted"]


def wanted(
    *,
    broadcasts: Iterable[ControlRecord],
    bots: Iterable[str],
    traffic: Mapping[str, datetime],
    now: datetime,
    window: float,
) -> set[str]:
    """The bots to hold: each with a broadcast that is not stopped (and carries its token),
    and each of `bots` (those with a record whose token opens here) that herald-api took a
    transactional message for within `window` seconds before `now` (`traffic`: bot id ->
    when). Holding a bot through the window spares each message a lease's wait."""
    holding = {
        record.bot_id
        for record in broadcasts
        if record.state is not BroadcastState.STOPPED and record.token is not None
    }
    since = now - timedelta(seconds=window)
    holding.update(bot_id for bot_id in bots if (at := traffic.get(bot_id)) and at > since)
    return holding


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
