"""The ledger's pure parts: cursors, the Accept header, the state filter, the two forms."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, datetime

import pytest
from fastapi import HTTPException

from herald.api import ledgers
from herald.core.deliveries import LEDGER_COLUMNS, DeliveryState, LedgerRow

UID = uuid.UUID("6d4b5f4e-6c1a-4c2e-9a43-0c5b1b3f2a10")


def test_a_cursor_gives_back_its_chat_id_for_its_broadcast_only() -> None:
    for chat_id in (-1001234567890, 0, 42):
        assert ledgers.parse_cursor(ledgers.cursor_of(UID, chat_id), UID) == chat_id
    assert ledgers.parse_cursor(None, UID) is None
    with pytest.raises(HTTPException) as refused:
        ledgers.parse_cursor(ledgers.cursor_of(uuid.uuid4(), 42), UID)
    assert refused.value.status_code == 422


@pytest.mark.parametrize(
    ("accept", "as_csv"),
    [
        (None, False),
        ("*/*", False),
        ("application/x-ndjson", False),
        ("text/csv", True),
        ("text/csv; charset=utf-8", True),
        ("application/json, TEXT/CSV;q=0.5", True),
    ],
)
def test_csv_only_when_accept_names_it(accept: str | None, as_csv: bool) -> None:
    assert ledgers.wants_csv(accept) is as_csv


def test_states_repeat_or_take_commas_once_each() -> None:
    assert ledgers.parse_states(None) is None
    assert ledgers.parse_states(["failed", "uncertain,failed"]) == [
        DeliveryState.FAILED,
        DeliveryState.UNCERTAIN,
    ]
    with pytest.raises(HTTPException) as refused:
        ledgers.parse_states(["delivered,gone"])
    detail: list[dict[str, str]] = refused.value.detail  # type: ignore[assignment]
    assert "unknown state 'gone'" in detail[0]["msg"]


def test_the_csv_and_json_forms_say_the_same() -> None:
    at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    rows = [
        LedgerRow(
            chat_id=1,
            state=DeliveryState.DELIVERED,
            message_id=7,
            attempts=1,
            created_at=at,
            finished_at=at,
        ),
        LedgerRow(
            chat_id=2,
            state=DeliveryState.FAILED,
            reason='says "no", twice',
            attempts=2,
            created_at=at,
        ),
    ]
    table = list(
        csv.DictReader(io.StringIO(ledgers.encode(rows, as_csv=True, header=True).decode()))
    )
    lines = [json.loads(line) for line in ledgers.encode(rows, as_csv=False).splitlines()]
    assert tuple(table[0]) == LEDGER_COLUMNS
    for cells, wire in zip(table, lines, strict=True):
        assert cells == {k: "" if v is None else str(v) for k, v in wire.items()}
    assert table[1]["reason"] == 'says "no", twice'
    assert lines[0]["finishedAt"] == "2026-12-01T09:00:00Z"
