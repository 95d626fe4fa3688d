"""Property-based fuzzing of the two parsers that take outside input: the wire decoder (any
bytes a NATS subject may carry) and the subscriber CSV import (any text a user may upload).
Each gives a valid result or its own readable error, never another exception."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from typing import Any

import ormsgpack
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from herald.core import envelopes
from herald.core.contents import Content
from herald.core.subscribers import CSV_COLUMNS, CsvError, Subscriber, parse_csv

# Every record kind that travels through NATS, with one valid instance to mutate.
_WHEN = dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)
VALID: dict[type[Any], Any] = {
    envelopes.WorkBatch: envelopes.WorkBatch(
        uid="0b7c",
        recipients=[envelopes.Recipient(42, "ru", "Анна", None, "anna"), envelopes.Recipient(-7)],
    ),
    envelopes.ControlRecord: envelopes.ControlRecord(
        uid="0b7c",
        namespace="marketing",
        name="black-friday",
        generation=3,
        bot_id="123456",
        token="k1.c2VhbGVk",
        content=Content(text="<b>Sale</b> {first_name}", localized={"ru": {"text": "Скидки"}}),
        rate=envelopes.SendRate(messages_per_second=25),
        state=envelopes.BroadcastState.ACTIVE,
        deadline=_WHEN,
    ),
    envelopes.FaultRecord: envelopes.FaultRecord(
        uid="0b7c", reason="ContentRejected", message="can't parse entities", at=_WHEN
    ),
    envelopes.BotHalt: envelopes.BotHalt(bot_id="123456", until=_WHEN),
    envelopes.Lease: envelopes.Lease(bot_id="123456", holder="sender-1", expires=_WHEN),
    envelopes.CompletionRecord: envelopes.CompletionRecord(
        uid="0b7c",
        namespace="marketing",
        name="black-friday",
        outcome="Complete",
        total=3,
        delivered=1,
        blocked=1,
        failed=0,
        uncertain=1,
        started_at=_WHEN,
    ),
}
KINDS = pytest.mark.parametrize("kind", list(VALID), ids=lambda kind: kind.__name__)


def decodes_or_refuses(kind: type[Any], data: bytes) -> None:
    """The decoder's whole contract: a record of `kind`, or DecodeError; nothing else."""
    try:
        record = envelopes.decode(kind, data)
    except envelopes.DecodeError as error:
        assert str(error)  # says what was wrong
    else:
        assert isinstance(record, kind)


# --- the wire decoder ------------------------------------------------------------------


@KINDS
@given(data=st.binary(max_size=600))
@example(data=b"\x91" * 100_000 + b"\xc0")  # arrays nested far past any recursion limit
@example(data=b"\xd4\x01\x01")  # a msgpack extension type
@example(data=b"\x81\x91\x01\x01")  # a map with an array for a key
@example(data=b"\xdf\xff\xff\xff\xff")  # a map announcing 4 billion entries, then nothing
def test_arbitrary_bytes_decode_or_refuse(kind: type[Any], data: bytes) -> None:
    decodes_or_refuses(kind, data)


_MUTATION = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10_000), st.integers(1, 255)),
    st.tuples(st.just("delete"), st.integers(0, 10_000), st.integers(1, 8)),
    st.tuples(st.just("insert"), st.integers(0, 10_000), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("truncate"), st.integers(0, 10_000), st.just(0)),
)


def mutate(data: bytes, mutations: list[tuple[str, int, Any]]) -> bytes:
    buffer = bytearray(data)
    for action, position, argument in mutations:
        at = position % (len(buffer) + 1)
        if action == "flip" and at < len(buffer):
            buffer[at] ^= argument
        elif action == "delete":
            del buffer[at : at + argument]
        elif action == "insert":
            buffer[at:at] = argument
        elif action == "truncate":
            del buffer[at:]
    return bytes(buffer)


@KINDS
@given(mutations=st.lists(_MUTATION, min_size=1, max_size=6))
@settings(max_examples=150)
def test_mutated_valid_records_decode_or_refuse(
    kind: type[Any], mutations: list[tuple[str, int, Any]]
) -> None:
    decodes_or_refuses(kind, mutate(envelopes.encode(VALID[kind]), mutations))


_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=True)
    | st.text(max_size=12)
    | st.binary(max_size=12)
    | st.builds(ormsgpack.Ext, st.integers(0, 127), st.binary(max_size=4))
)


def _shaped_like(kind: type[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Maps with the record's own keys (and a stranger) holding arbitrary values: closer
    to a valid record than random bytes, so validation, not msgpack, is what gets tested."""
    values = st.recursive(
        _SCALARS,
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=6), children, max_size=4)
        ),
        max_leaves=12,
    )
    keys = st.sampled_from([*kind.model_fields, "extra"])
    return st.dictionaries(keys, values, max_size=len(kind.model_fields) + 1).map(
        lambda raw: {"v": 1, **raw} if "v" not in raw else raw
    )


@KINDS
@given(data=st.data())
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_record_shaped_maps_decode_or_refuse(kind: type[Any], data: st.DataObject) -> None:
    raw = data.draw(_shaped_like(kind))
    decodes_or_refuses(kind, ormsgpack.packb(raw))


_RECIPIENTS = st.builds(
    envelopes.Recipient,
    chat_id=st.integers(-(2**63), 2**63 - 1),
    language_code=st.none() | st.from_regex(r"[a-z]{2,3}", fullmatch=True),
    first_name=st.none() | st.text(max_size=64),
    last_name=st.none() | st.text(max_size=64),
    username=st.none() | st.text(max_size=32),
)


@given(uid=st.uuids().map(str), recipients=st.lists(_RECIPIENTS, min_size=1, max_size=50))
def test_work_batches_round_trip(uid: str, recipients: list[envelopes.Recipient]) -> None:
    batch = envelopes.WorkBatch(uid=uid, recipients=recipients)
    assert envelopes.decode(envelopes.WorkBatch, envelopes.encode(batch)) == batch


# --- the subscriber CSV ----------------------------------------------------------------

_PROBLEM = re.compile(r"^line \d+: \S")


def parses_or_names_lines(text: str) -> list[Subscriber] | CsvError:
    try:
        return parse_csv(text)
    except CsvError as error:
        assert error.problems
        for problem in error.problems:
            assert _PROBLEM.match(problem) or problem == "stopped after 50 problems", problem
        assert "nothing imported" in str(error)
        return error


@given(text=st.text(max_size=400))
@example(text="\ufeffchat_id\n1\n")  # a byte-order mark from a spreadsheet's export
@example(text='chat_id,first_name\n1,"unclosed\n')
@example(text="chat_id\n1\x00\n")
@example(text="chat_id\r\n1\r\n2\r")
@example(text="chat_id\n" + "x\n" * 80)  # more problems than are worth listing
def test_arbitrary_text_parses_or_names_its_lines(text: str) -> None:
    parses_or_names_lines(text)


# What a UTF-8 file can hold; NUL aside, which no Postgres text column accepts.
_CHARACTERS = st.characters(codec="utf-8", exclude_characters="\x00")
_CELL = st.text(_CHARACTERS, max_size=20)


@given(
    header=st.lists(st.sampled_from([*CSV_COLUMNS, "phone", ""]), min_size=1, max_size=8),
    rows=st.lists(st.lists(_CELL, max_size=8), max_size=6),
)
def test_csv_shaped_text_parses_or_names_its_lines(
    header: list[str], rows: list[list[str]]
) -> None:
    """Well-formed CSV with arbitrary cells: the checks of each column, not the tokenizer."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    parses_or_names_lines(out.getvalue())


def _stripped(text: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return text.map(str.strip).filter(bool)


_NAMES = _stripped(st.text(_CHARACTERS, max_size=30))
_SUBSCRIBER = st.builds(
    Subscriber,
    chat_id=st.integers(-(2**63), 2**63 - 1).filter(bool),
    username=st.none() | st.from_regex(r"[A-Za-z][A-Za-z0-9_]{4,31}", fullmatch=True),
    first_name=st.none() | _NAMES,
    last_name=st.none() | _NAMES,
    language_code=st.none() | st.from_regex(r"[a-z]{2,3}(-[a-z0-9]{2,8}){0,2}", fullmatch=True),
    tags=st.lists(
        st.from_regex(r"[a-z0-9]([a-z0-9._-]{0,20}[a-z0-9])?", fullmatch=True),
        unique=True,
        max_size=4,
    ).map(tuple),
)


def to_csv(subscribers: list[Subscriber]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for s in subscribers:
        cells = (s.chat_id, s.username, s.first_name, s.last_name, s.language_code)
        writer.writerow([*("" if cell is None else cell for cell in cells), ";".join(s.tags)])
    return out.getvalue()


@given(subscribers=st.lists(_SUBSCRIBER, max_size=20, unique_by=lambda s: s.chat_id))
def test_valid_rows_round_trip(subscribers: list[Subscriber]) -> None:
    assert parse_csv(to_csv(subscribers)) == subscribers
