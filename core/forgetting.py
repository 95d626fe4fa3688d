"""Erasing one chat of one bot from every table that names it, in one transaction, for a
data-protection request (`herald subscribers forget CHAT_ID --bot NAME`).

The tables with a chat id (see the migrations): ``subscribers``, the ledger ``deliveries``
and ``clicks`` (through the bot's broadcasts), and the transactional ``messages``. The same
chat id of another bot is another person's relation to another bot, and is left alone.

A broadcast's bookkeeping row keeps counting the recipients it had: its ``total`` goes down
by the rows removed, so a broadcast still sending still completes (every remaining row
terminal), and its work messages that still name the chat find no ledger row to claim, so
nothing more is sent to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from herald.core.subscribers import BOT_ID_FORM, is_bot_id

__all__ = ["Forgotten", "UnknownBot", "forget_chat"]


class UnknownBot(LookupError):
    """The database knows nothing of this bot: a typo more likely than an empty result."""


@dataclass(frozen=True)
class Forgotten:
    """What was removed, per table."""

    subscribers: int
    deliveries: int
    clicks: int
    messages: int
    broadcasts: int  # the broadcasts whose ledger named the chat

    @property
    def total(self) -> int:
        return self.subscribers + self.deliveries + self.clicks + self.messages


# Each bot appears in one of these, or the database has never heard of it.
_KNOWN = """
SELECT EXISTS (SELECT 1 FROM subscribers WHERE bot_id = $1)
    OR EXISTS (SELECT 1 FROM broadcasts WHERE bot_id = $1)
    OR EXISTS (SELECT 1 FROM messages WHERE bot_id = $1)
"""

# Through the primary keys: deliveries and clicks lead with broadcast_uid, so each of the
# bot's broadcasts is one probe.
_DELIVERIES = """
WITH gone AS (
    DELETE FROM deliveries
    WHERE broadcast_uid IN (SELECT uid FROM broadcasts WHERE bot_id = $1) AND chat_id = $2
    RETURNING broadcast_uid
), counted AS (
    SELECT broadcast_uid, count(*) AS n FROM gone GROUP BY broadcast_uid
), lowered AS (
    UPDATE broadcasts b SET total = greatest(b.total - c.n, 0)
    FROM counted c
    WHERE b.uid = c.broadcast_uid AND b.total IS NOT NULL
)
SELECT coalesce(sum(n), 0)::bigint AS rows, count(*) AS broadcasts FROM counted
"""

_CLICKS = """
DELETE FROM clicks
WHERE broadcast_uid IN (SELECT uid FROM broadcasts WHERE bot_id = $1) AND chat_id = $2
"""


async def forget_chat(connection: asyncpg.Connection, *, bot_id: str, chat_id: int) -> Forgotten:
    """Remove every row of ``chat_id`` for the bot ``bot_id``, all or nothing.
    :class:`UnknownBot` when the database knows no such bot."""
    if not is_bot_id(bot_id):
        raise ValueError(f"{bot_id!r} is not a bot id: {BOT_ID_FORM}")
    async with connection.transaction():
        if not await connection.fetchval(_KNOWN, bot_id):
            raise UnknownBot(
                f"the database knows no bot {bot_id} (no subscribers, Broadcasts or "
                "transactional messages of it)"
            )
        subscribers = await connection.execute(
            "DELETE FROM subscribers WHERE bot_id = $1 AND chat_id = $2", bot_id, chat_id
        )
        ledger = await connection.fetchrow(_DELIVERIES, bot_id, chat_id)
        clicks = await connection.execute(_CLICKS, bot_id, chat_id)
        messages = await connection.execute(
            "DELETE FROM messages WHERE bot_id = $1 AND chat_id = $2", bot_id, chat_id
        )
    assert ledger is not None  # an aggregate always returns its row
    return Forgotten(
        subscribers=_count(subscribers),
        deliveries=int(ledger["rows"]),
        clicks=_count(clicks),
        messages=_count(messages),
        broadcasts=int(ledger["broadcasts"]),
    )


def _count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])
