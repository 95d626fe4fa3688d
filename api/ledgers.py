"""Reading a Broadcast's ledger: ``GET .../broadcasts/{name}/deliveries`` (docs/transactional.md,
"The ledger of a broadcast").

The rows go out in chat id order, read from Postgres in keyset pages (a range of the primary
key after the last chat id sent, never an OFFSET) and written as each page comes, so a
ledger of millions streams in the memory of one page on herald-api and needs no more on the
client. Each page is its own short query: no transaction stays open for the length of a
download, and a row whose state changes meanwhile is still sent once, as it was when its
page was read.

With ``limit``, one page of at most that many rows is answered; when more follow, a
``Link: <...?after=CURSOR...>; rel="next"`` header (RFC 8288) gives the next page's
address. The cursor is opaque to clients: the broadcast's uid and the last chat id, so a
cursor of one Broadcast (or of an earlier one of the same name) is refused for another.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass

import asyncpg
from fastapi import HTTPException

from herald.api import postgres
from herald.api.errors import problem
from herald.core.deliveries import CSV, LEDGER_COLUMNS, DeliveryState, LedgerRow, csv_values

__all__ = [
    "MAX_LIMIT",
    "PAGE_ROWS",
    "Page",
    "cursor_of",
    "encode",
    "first_page",
    "parse_cursor",
    "parse_states",
    "stream",
    "wants_csv",
]

# Rows read from Postgres per query while streaming, and the largest ?limit=: about a
# megabyte of rows, held at once; a whole ledger is streamed without a limit.
PAGE_ROWS = 5000
MAX_LIMIT = 10_000

_KNOWN = [state.value for state in DeliveryState]
_STATES = ", ".join(_KNOWN)


def parse_states(values: Sequence[str] | None) -> list[DeliveryState] | None:
    """The states of ``?state=a&state=b,c``; None without any (every state). 422 naming the
    unknown ones."""
    if not values:
        return None
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in _KNOWN]
    if unknown:
        raise HTTPException(
            422,
            [
                problem(
                    ["query", "state"],
                    f"unknown state {', '.join(map(repr, unknown))}: a ledger row is one of "
                    f"{_STATES} (repeat state= or separate them with commas)",
                    "enum",
                )
            ],
        )
    return list(dict.fromkeys(DeliveryState(name) for name in names)) or None


def cursor_of(broadcast_uid: uuid.UUID, chat_id: int) -> str:
    raw = f"{broadcast_uid}:{chat_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def parse_cursor(cursor: str | None, broadcast_uid: uuid.UUID) -> int | None:
    """The last chat id sent before, from an ``after`` cursor this API gave; 422 for one it
    did not give, or gave for another broadcast."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        uid, chat_id = raw.rsplit(":", 1)
        of, after = uuid.UUID(uid), int(chat_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        of, after = None, 0
    if of != broadcast_uid:
        why = "is not a cursor of this API" if of is None else "is of another broadcast"
        raise HTTPException(
            422,
            [
                problem(
                    ["query", "after"],
                    f"after={cursor!r} {why}: give the cursor of the Link header (rel=next) "
                    "of this broadcast's previous page",
                    "cursor",
                )
            ],
        )
    return after


def wants_csv(accept: str | None) -> bool:
    """Whether the Accept header asks for CSV; anything else gets JSON lines."""
    if not accept:
        return False
    return any(part.split(";", 1)[0].strip().lower() == CSV for part in accept.split(","))


def _rows(records: Iterable[asyncpg.Record]) -> list[LedgerRow]:
    return [LedgerRow.model_validate(dict(record)) for record in records]


def encode(rows: Sequence[LedgerRow], *, as_csv: bool, header: bool = False) -> bytes:
    """Rows as lines of JSON or CSV (with the header line first when ``header``)."""
    if as_csv:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        if header:
            writer.writerow(LEDGER_COLUMNS)
        writer.writerows(csv_values(row) for row in rows)
        return out.getvalue().encode()
    return b"".join(row.model_dump_json().encode() + b"\n" for row in rows)


@dataclass(frozen=True)
class Page:
    rows: list[LedgerRow]
    next: str | None  # the cursor of the rows after these; None when none follow


async def first_page(
    pool: asyncpg.Pool,
    broadcast_uid: uuid.UUID,
    *,
    after: int | None,
    states: Sequence[str] | None,
    limit: int,
) -> Page:
    """One page of ``limit`` rows, read before the answer starts so that its Link header
    can say whether another follows (one row more is read to know)."""
    records = await postgres.ledger_page(
        pool, broadcast_uid, after=after, states=states, limit=limit + 1
    )
    rows = _rows(records[:limit])
    more = len(records) > limit
    return Page(rows, cursor_of(broadcast_uid, rows[-1].chat_id) if more and rows else None)


async def stream(
    pool: asyncpg.Pool,
    broadcast_uid: uuid.UUID,
    *,
    after: int | None,
    states: Sequence[str] | None,
    as_csv: bool,
) -> AsyncIterator[bytes]:
    """Every row after ``after``, a page at a time."""
    header = as_csv
    while True:
        records = await postgres.ledger_page(
            pool, broadcast_uid, after=after, states=states, limit=PAGE_ROWS
        )
        rows = _rows(records)
        if rows or header:
            yield encode(rows, as_csv=as_csv, header=header)
        header = False
        if len(rows) < PAGE_ROWS:
            return
        after = rows[-1].chat_id
