"""Work messages: anything undecodable or foreign is bad (terminated), never an exception."""

from __future__ import annotations

import ormsgpack
from hypothesis import given
from hypothesis import strategies as st

from herald.core.envelopes import Recipient, WorkBatch, encode
from herald.sender.batches import BadWork, Progress, parse

UID = "0b6c1f9e-8a51-4c57-9d1e-6a1f2a3b4c5d"


@given(st.binary(max_size=512))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    result = parse(data, uid=UID)
    assert isinstance(result, BadWork | WorkBatch)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(
                st.sampled_from(["v", "uid", "recipients", "x"]), children, max_size=4
            )
        ),
        max_leaves=20,
    )
)
def test_arbitrary_msgpack_structures_never_raise(value: object) -> None:
    result = parse(ormsgpack.packb(value), uid=UID)
    assert isinstance(result, BadWork)


def test_a_good_batch_parses() -> None:
    batch = WorkBatch(uid=UID, recipients=[Recipient(1, "en"), Recipient(2)])
    assert parse(encode(batch), uid=UID) == batch


def test_a_batch_of_another_broadcast_is_foreign() -> None:
    batch = WorkBatch(uid="another", recipients=[Recipient(1)])
    assert parse(encode(batch), uid=UID) == BadWork("foreign")


def test_an_empty_batch_is_bad() -> None:
    assert parse(encode(WorkBatch(uid=UID, recipients=[])), uid=UID) == BadWork("empty")


def test_a_chat_id_beyond_the_ledgers_bigint_is_invalid() -> None:
    # msgpack carries integers up to 2**64 - 1, beyond what Postgres' bigint can hold.
    for chat_id in (2**63, 2**64 - 1):
        batch = WorkBatch(uid=UID, recipients=[Recipient(1), Recipient(chat_id)])
        assert parse(encode(batch), uid=UID) == BadWork("invalid")
    edges = WorkBatch(uid=UID, recipients=[Recipient(2**63 - 1), Recipient(-(2**63))])
    assert parse(encode(edges), uid=UID) == edges


def test_progress_is_done_when_every_row_settled_and_stuck_on_busy_rows() -> None:
    progress = Progress.of(WorkBatch(uid=UID, recipients=[Recipient(1), Recipient(2)]))
    progress.mark_busy([2])
    assert not progress.stuck
    progress.settle([1])
    assert progress.stuck and not progress.done
    progress.settle([2])
    assert progress.done
