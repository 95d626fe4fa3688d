"""Wire records round-trip, and anything else is a DecodeError, never a crash."""

from __future__ import annotations

import datetime as dt

import ormsgpack
import pytest

from herald.core import envelopes, subjects
from herald.core.bots import BotLimits, PaidLimits
from herald.core.broadcasts import Rate
from herald.core.contents import Content
from herald.core.corrections import Correction
from herald.core.sealing import KeyRing, SealError, generate_key

RING = KeyRing.parse(generate_key())


def control() -> envelopes.ControlRecord:
    return envelopes.ControlRecord(
        uid="0b7c",
        namespace="marketing",
        name="black-friday",
        generation=3,
        bot_id="123456",
        token=RING.seal("123456:secret", bound_to="0b7c"),
        content=Content(text="<b>Sale</b>"),
        rate=envelopes.SendRate(messages_per_second=25),
        state=envelopes.BroadcastState.ACTIVE,
        deadline=dt.datetime(2026, 12, 2, 9, tzinfo=dt.UTC),
    )


def test_control_record_round_trips_with_its_token_sealed() -> None:
    record = control()
    data = envelopes.encode(record)
    decoded = envelopes.decode(envelopes.ControlRecord, data)
    assert decoded == record
    assert decoded.open_token(RING) == "123456:secret"
    assert b"secret" not in data
    assert "secret" not in repr(decoded)


def test_a_sealed_token_opens_only_in_its_own_record_and_ring() -> None:
    record = control()
    moved = record.model_copy(update={"uid": "another"})
    with pytest.raises(SealError, match="does not open"):
        moved.open_token(RING)
    with pytest.raises(SealError, match="not in this component's token key ring"):
        record.open_token(KeyRing.parse(generate_key("k2")))


def test_a_bot_s_limits_travel_with_paid_off_unless_enabled() -> None:
    assert envelopes.SendLimits.of(BotLimits(messages_per_second=20)) == envelopes.SendLimits(
        messages_per_second=20
    )
    paid = BotLimits(paid=PaidLimits(enabled=True, messages_per_second=500, stars_per_day=9))
    assert envelopes.SendLimits.of(paid) == envelopes.SendLimits(
        messages_per_second=30, paid_messages_per_second=500, stars_per_day=9
    )


def test_the_rate_travels_typed_from_the_spec() -> None:
    rate = envelopes.SendRate.of(
        Rate(messages_per_second=100, allow_paid_broadcast=True, stars_budget=5)
    )
    assert rate == envelopes.SendRate(
        messages_per_second=100.0, allow_paid_broadcast=True, stars_budget=5
    )
    record = control().model_copy(update={"rate": rate})
    assert envelopes.decode(envelopes.ControlRecord, envelopes.encode(record)).rate == rate


def test_a_version_1_control_record_is_read_with_its_flat_rate_nested() -> None:
    # What an operator of the previous release wrote: the rate's fields at the top level.
    record = control().model_copy(
        update={"rate": envelopes.SendRate(messages_per_second=100, allow_paid_broadcast=True)}
    )
    current = ormsgpack.unpackb(envelopes.encode(record))
    assert current["v"] == envelopes.ControlRecord.VERSION == 4
    rate = current.pop("rate")
    del current["limits"], current["recall"], current["correction"]
    older = ormsgpack.packb({**current, **rate, "token": "123456:secret", "v": 1})
    # The token of an older record was in clear: it is dropped, never used.
    assert envelopes.decode(envelopes.ControlRecord, older) == record.model_copy(
        update={"token": None}
    )


def test_a_version_3_control_record_is_read_without_recall_or_correction() -> None:
    record = control()
    current = ormsgpack.unpackb(envelopes.encode(record))
    del current["recall"], current["correction"]
    older = ormsgpack.packb({**current, "v": 3})
    decoded = envelopes.decode(envelopes.ControlRecord, older)
    assert decoded == record
    assert decoded.recall is False
    assert decoded.correction is None


def test_recall_and_correction_travel_in_the_control_record() -> None:
    record = control().model_copy(
        update={"recall": True, "correction": Correction(caption="fixed", parse_mode="None")}
    )
    assert envelopes.decode(envelopes.ControlRecord, envelopes.encode(record)) == record


@pytest.mark.parametrize("version", [0, 5, None], ids=["older", "newer", "none"])
def test_a_control_record_of_another_version_is_a_decode_error(version: int | None) -> None:
    data = ormsgpack.unpackb(envelopes.encode(control()))
    with pytest.raises(envelopes.DecodeError, match="version"):
        envelopes.decode(envelopes.ControlRecord, ormsgpack.packb({**data, "v": version}))


def test_work_batch_round_trips_with_a_stable_message_id() -> None:
    batch = envelopes.WorkBatch(
        uid="0b7c",
        recipients=[envelopes.Recipient(42, "ru", "Анна"), envelopes.Recipient(43)],
    )
    assert envelopes.decode(envelopes.WorkBatch, envelopes.encode(batch)) == batch
    assert batch.msg_id(0) == "0b7c:0:42:43"
    # A new round, or another cut of the same rows, is new work to JetStream.
    assert batch.msg_id(1) == "0b7c:1:42:43"
    assert batch.model_copy(update={"recipients": batch.recipients[:1]}).msg_id(0) == "0b7c:0:42:42"


def test_work_encoded_from_rows_is_the_work_batch_byte_for_byte() -> None:
    rows = [
        (42, "ru", "Анна", None, "anna"),
        (43, None, None, None, None),
        (2**62, "en", "O'Brien", "Ó", None),
    ]
    batch = envelopes.WorkBatch(uid="0b7c", recipients=[envelopes.Recipient(*r) for r in rows])
    assert envelopes.encode_work("0b7c", rows) == envelopes.encode(batch)
    assert envelopes.WorkBatch.id_of("0b7c", 3, 42, 2**62) == batch.msg_id(3)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\xc1", id="reserved-byte"),
        pytest.param(ormsgpack.packb([1, 2]), id="not-a-map"),
        pytest.param(ormsgpack.packb({"v": 2, "uid": "x", "recipients": []}), id="future-version"),
        pytest.param(ormsgpack.packb({"uid": "x", "recipients": []}), id="no-version"),
        pytest.param(ormsgpack.packb({"v": 1, "uid": "x"}), id="missing-field"),
        pytest.param(ormsgpack.packb({"v": 1, "uid": "x", "recipients": [["a"]]}), id="bad-chat"),
        pytest.param(
            ormsgpack.packb({"v": 1, "uid": "x", "recipients": [], "extra": 1}), id="unknown-field"
        ),
    ],
)
def test_bad_bytes_are_a_decode_error(data: bytes) -> None:
    with pytest.raises(envelopes.DecodeError):
        envelopes.decode(envelopes.WorkBatch, data)


def test_bot_id_is_the_public_part_of_the_token() -> None:
    assert subjects.bot_id_of("123456:ABC-def") == "123456"
    with pytest.raises(ValueError, match="digits"):
        subjects.bot_id_of("not-a-token")


def test_the_words_that_cross_processes_keep_their_wire_values() -> None:
    # Senders and operators of neighbouring versions read each other's records.
    assert [str(r) for r in envelopes.FaultReason] == [
        "ContentRejected",
        "BotUnauthorized",
        "BudgetExhausted",
        # New in this release: an older operator ignores a fault it cannot read.
        "DailyBudgetExhausted",
    ]
    assert [str(o) for o in envelopes.CompletionOutcome] == [
        "Complete",
        "DeadlineExceeded",
        "Failed",
    ]


def test_fault_and_completion_records_round_trip_typed() -> None:
    at = dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)
    fault = envelopes.FaultRecord(
        uid="0b7c", reason=envelopes.FaultReason.BUDGET_EXHAUSTED, message="spent", at=at
    )
    decoded = envelopes.decode(envelopes.FaultRecord, envelopes.encode(fault))
    assert decoded.reason is envelopes.FaultReason.BUDGET_EXHAUSTED
    done = envelopes.CompletionRecord(
        uid="0b7c",
        namespace="marketing",
        name="black-friday",
        outcome=envelopes.CompletionOutcome.DEADLINE_EXCEEDED,
        total=3,
        delivered=2,
        blocked=0,
        failed=1,
        uncertain=0,
    )
    decoded_done = envelopes.decode(envelopes.CompletionRecord, envelopes.encode(done))
    assert decoded_done.outcome is envelopes.CompletionOutcome.DEADLINE_EXCEEDED


def test_a_completion_record_of_version_1_is_read_without_clicks() -> None:
    done = envelopes.CompletionRecord(
        uid="0b7c",
        namespace="marketing",
        name="poll",
        outcome=envelopes.CompletionOutcome.COMPLETE,
        total=3,
        delivered=3,
        blocked=0,
        failed=0,
        uncertain=0,
        clicks={"yes": 2},
    )
    current = ormsgpack.unpackb(envelopes.encode(done))
    assert current["v"] == envelopes.CompletionRecord.VERSION == 2
    assert envelopes.decode(envelopes.CompletionRecord, envelopes.encode(done)).clicks == {"yes": 2}
    older = {key: value for key, value in current.items() if key != "clicks"} | {"v": 1}
    decoded = envelopes.decode(envelopes.CompletionRecord, ormsgpack.packb(older))
    assert decoded.clicks == {}
    assert decoded.total == 3


def test_a_word_outside_the_vocabulary_is_a_decode_error() -> None:
    data = ormsgpack.packb({"v": 1, "uid": "x", "reason": "Deleted", "message": "", "at": 0})
    with pytest.raises(envelopes.DecodeError):
        envelopes.decode(envelopes.FaultRecord, data)
