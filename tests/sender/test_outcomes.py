"""The one mapping from a Telegram outcome to a ledger state and an action."""

from __future__ import annotations

import pytest

from herald.core.broadcasts import Delivery
from herald.core.deliveries import DeliveryState
from herald.core.envelopes import FaultReason
from herald.sender.outcomes import Action, Reason, judge, judge_unsent
from herald.telegram.outcomes import Outcome, OutcomeKind
from herald.telegram.rendering import Rendered

MOST = Delivery.AT_MOST_ONCE
LEAST = Delivery.AT_LEAST_ONCE

CASES = [
    # id, outcome, delivery, attempt, proven, expected (state, action, reason or fault)
    (
        "ok",
        Outcome(kind=OutcomeKind.OK, message_id=7),
        MOST,
        1,
        False,
        (DeliveryState.DELIVERED, Action.RECORD, None),
    ),
    (
        "429-halts-bot-row-pending",
        Outcome(kind=OutcomeKind.RETRY_AFTER, retry_after=5),
        MOST,
        1,
        True,
        (DeliveryState.PENDING, Action.HALT_BOT, None),
    ),
    (
        "403-blocked",
        Outcome(kind=OutcomeKind.FORBIDDEN, description="Forbidden: bot was blocked by the user"),
        MOST,
        1,
        True,
        (DeliveryState.BLOCKED, Action.DEACTIVATE, Reason.BLOCKED),
    ),
    (
        "403-deactivated",
        Outcome(kind=OutcomeKind.FORBIDDEN, description="Forbidden: user is deactivated"),
        MOST,
        1,
        True,
        (DeliveryState.BLOCKED, Action.DEACTIVATE, Reason.DEACTIVATED),
    ),
    (
        "400-chat-not-found",
        Outcome(kind=OutcomeKind.BAD_REQUEST, description="Bad Request: chat not found"),
        MOST,
        1,
        False,
        (DeliveryState.FAILED, Action.RECORD, Reason.CHAT_NOT_FOUND),
    ),
    (
        "400-markup-before-first-success-trips",
        Outcome(
            kind=OutcomeKind.BAD_REQUEST,
            description="Bad Request: can't parse entities: Unsupported start tag",
        ),
        MOST,
        1,
        False,
        (DeliveryState.PENDING, Action.TRIP, FaultReason.CONTENT_REJECTED),
    ),
    (
        "400-markup-after-success-fails-row",
        Outcome(kind=OutcomeKind.BAD_REQUEST, description="Bad Request: can't parse entities: x"),
        MOST,
        1,
        True,
        (DeliveryState.FAILED, Action.RECORD, "BadRequest: Bad Request: can't parse entities: x"),
    ),
    (
        "400-other-fails-row",
        Outcome(kind=OutcomeKind.BAD_REQUEST, description="Bad Request: PEER_ID_INVALID"),
        MOST,
        1,
        False,
        (DeliveryState.FAILED, Action.RECORD, "BadRequest: Bad Request: PEER_ID_INVALID"),
    ),
    (
        "401-trips",
        Outcome(kind=OutcomeKind.UNAUTHORIZED, description="Unauthorized"),
        MOST,
        1,
        False,
        (DeliveryState.PENDING, Action.TRIP, FaultReason.BOT_UNAUTHORIZED),
    ),
    (
        "5xx-first-retries",
        Outcome(kind=OutcomeKind.SERVER_ERROR),
        MOST,
        1,
        True,
        (DeliveryState.CLAIMED, Action.RETRY, None),
    ),
    (
        "5xx-third-fails",
        Outcome(kind=OutcomeKind.SERVER_ERROR),
        MOST,
        3,
        True,
        (DeliveryState.FAILED, Action.RECORD, Reason.SERVER_ERROR),
    ),
    (
        "refused-retries",
        Outcome(kind=OutcomeKind.NOT_SENT),
        MOST,
        2,
        True,
        (DeliveryState.CLAIMED, Action.RETRY, None),
    ),
    (
        "refused-third-fails",
        Outcome(kind=OutcomeKind.NOT_SENT),
        LEAST,
        3,
        True,
        (DeliveryState.FAILED, Action.RECORD, Reason.NETWORK_ERROR),
    ),
    (
        "timeout-at-most-once-uncertain",
        Outcome(kind=OutcomeKind.MAYBE_SENT),
        MOST,
        1,
        True,
        (DeliveryState.UNCERTAIN, Action.RECORD, Reason.TIMEOUT),
    ),
    (
        "timeout-at-least-once-retries",
        Outcome(kind=OutcomeKind.MAYBE_SENT),
        LEAST,
        1,
        True,
        (DeliveryState.CLAIMED, Action.RETRY, None),
    ),
    (
        "timeout-at-least-once-bounded",
        Outcome(kind=OutcomeKind.MAYBE_SENT),
        LEAST,
        3,
        True,
        (DeliveryState.UNCERTAIN, Action.RECORD, Reason.TIMEOUT),
    ),
]


@pytest.mark.parametrize(
    ("outcome", "delivery", "attempt", "proven", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_judge(
    outcome: Outcome,
    delivery: Delivery,
    attempt: int,
    proven: bool,
    expected: tuple[DeliveryState, Action, str | None],
) -> None:
    verdict = judge(outcome, delivery=delivery, attempt=attempt, proven=proven)
    assert (verdict.state, verdict.action, verdict.fault or verdict.reason) == expected
    # A broadcast-wide fault is reported in the shared vocabulary, never as a row's reason.
    assert (verdict.fault is not None) == (verdict.action is Action.TRIP)
    assert verdict.fault is None or verdict.reason is None


def test_429_waits_the_whole_retry_after() -> None:
    verdict = judge(
        Outcome(kind=OutcomeKind.RETRY_AFTER, retry_after=7), delivery=MOST, attempt=1, proven=True
    )
    assert verdict.delay == 7


def test_retries_back_off_exponentially() -> None:
    delays = [
        judge(Outcome(kind=OutcomeKind.SERVER_ERROR), delivery=MOST, attempt=n, proven=True).delay
        for n in (1, 2)
    ]
    assert delays[0] > 0
    assert delays[1] == 2 * delays[0]


def _bad(description: str) -> Outcome:
    return Outcome(kind=OutcomeKind.BAD_REQUEST, description=f"Bad Request: {description}")


TRIP = (DeliveryState.PENDING, Action.TRIP, FaultReason.CONTENT_REJECTED)
# id, outcome, copying, proven, expected (state, action, reason or fault)
CONTENT_CASES = [
    ("copy-source-gone-trips", _bad("message to copy not found"), True, False, TRIP),
    ("copy-source-chat-unknown-trips", _bad("chat not found"), True, False, TRIP),
    (
        "copy-proven-chat-not-found-is-the-recipient",
        _bad("chat not found"),
        True,
        True,
        (DeliveryState.FAILED, Action.RECORD, Reason.CHAT_NOT_FOUND),
    ),
    (
        "send-chat-not-found-is-always-the-recipient",
        _bad("chat not found"),
        False,
        False,
        (DeliveryState.FAILED, Action.RECORD, Reason.CHAT_NOT_FOUND),
    ),
    ("too-long-before-proof-trips", _bad("message is too long"), False, False, TRIP),
    (
        "too-long-after-proof-fails-the-row",
        _bad("message is too long"),
        False,
        True,
        (DeliveryState.FAILED, Action.RECORD, Reason.TEXT_TOO_LONG),
    ),
    (
        "caption-too-long-after-proof-fails-the-row",
        _bad("message caption is too long"),
        False,
        True,
        (DeliveryState.FAILED, Action.RECORD, Reason.TEXT_TOO_LONG),
    ),
]


@pytest.mark.parametrize(
    ("outcome", "copying", "proven", "expected"),
    [case[1:] for case in CONTENT_CASES],
    ids=[case[0] for case in CONTENT_CASES],
)
def test_judge_content_errors(
    outcome: Outcome,
    copying: bool,
    proven: bool,
    expected: tuple[DeliveryState, Action, str | None],
) -> None:
    verdict = judge(outcome, delivery=MOST, attempt=1, proven=proven, copying=copying)
    assert (verdict.state, verdict.action, verdict.fault or verdict.reason) == expected


@pytest.mark.parametrize(
    ("params", "verdict"),
    [
        pytest.param({"text": "x" * 4096}, None, id="at-the-limit"),
        pytest.param(
            {"text": "x" * 4097},
            (DeliveryState.FAILED, Action.RECORD, Reason.TEXT_TOO_LONG),
            id="over-the-limit",
        ),
        pytest.param(
            {"text": "<b>" + "x" * 4096 + "</b>", "parse_mode": "HTML"}, None, id="tags-not-counted"
        ),
    ],
)
def test_judge_unsent(
    params: dict[str, object], verdict: tuple[DeliveryState, Action, str] | None
) -> None:
    judged = judge_unsent(Rendered("sendMessage", {"chat_id": 1, **params}))
    assert (judged and (judged.state, judged.action, judged.reason)) == verdict
