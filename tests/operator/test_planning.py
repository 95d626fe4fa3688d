"""The planner as a table: spec, last status and facts in; actions, conditions and phase out."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from herald.core.broadcasts import BroadcastSpec
from herald.core.deliveries import DeliveryState
from herald.core.envelopes import BroadcastState, CompletionOutcome, FaultReason, FaultRecord
from herald.core.statuses import BroadcastStatus, ConditionStatus, ConditionType, Phase
from herald.operator.planning import (
    AmendCounts,
    EventType,
    Facts,
    LedgerFacts,
    Plan,
    RateSample,
    Reason,
    TokenState,
    Wait,
    finished,
    plan,
    rejected,
    waiting,
)

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
UID = "3f1c2a9e-0000-4000-8000-000000000001"
T, F = ConditionStatus.TRUE, ConditionStatus.FALSE


def spec(**overrides: Any) -> BroadcastSpec:
    raw: dict[str, Any] = {
        "botRef": {"name": "shop-bot"},
        "content": {"text": "<b>Sale</b>"},
        "audience": {"subscribers": {}},
    }
    raw.update(overrides)
    return BroadcastSpec.model_validate(raw)


def ledger(
    *, total: int = 10, published: bool = True, recorded: bool = False, **counts: int
) -> LedgerFacts:
    return LedgerFacts(
        materialised=True,
        published=published,
        total=total,
        counts={DeliveryState(k): v for k, v in counts.items()},
        completion_recorded=recorded,
    )


def fault(reason: FaultReason) -> FaultRecord:
    return FaultRecord(uid=UID, reason=reason, message=f"Telegram said no ({reason}).", at=NOW)


def facts(**overrides: Any) -> Facts:
    values: dict[str, Any] = {"generation": 1, "token": TokenState.FOUND}
    values.update(overrides)
    return Facts(**values)


@dataclass(frozen=True)
class Case:
    id: str
    facts: Facts
    spec: BroadcastSpec = field(default_factory=spec)
    status: BroadcastStatus | None = None
    phase: Phase = Phase.SENDING
    reason: str = "Sending"
    true: frozenset[ConditionType] = frozenset()
    control: BroadcastState | None = None
    materialise: bool = False
    publish: bool = False
    purge: bool = False
    close: str | None = None
    completion: CompletionOutcome | None = None
    clear_fault: bool = False


def previous(
    case_spec: BroadcastSpec, case_facts: Facts, *, now: datetime = NOW
) -> BroadcastStatus:
    """The status a first run would have written: for cases that start from it."""
    return plan(spec=case_spec, status=None, facts=case_facts, now=now).status


COMPLETE = previous(spec(), facts(ledger=ledger(delivered=10)))
CONTENT_REJECTED = previous(
    spec(), facts(fault=fault(FaultReason.CONTENT_REJECTED), ledger=ledger(pending=10))
)
BUDGET = previous(
    spec(rate={"messagesPerSecond": 100, "allowPaidBroadcast": True, "starsBudget": 5}),
    facts(fault=fault(FaultReason.BUDGET_EXHAUSTED), ledger=ledger(pending=10)),
)
PAID = {"messagesPerSecond": 100, "allowPaidBroadcast": True, "starsBudget": 50}

POSTGRES_WAIT = Wait(
    reason=Reason.WAITING_FOR_DATABASE,
    message="Waiting for Postgres (writing the audience): no answer within 10 s; retrying.",
)

CASES = [
    Case(
        "preparation-that-gave-up-waiting-says-so-and-retries",
        facts(preparing_wait=POSTGRES_WAIT),
        phase=Phase.PENDING,
        reason="WaitingForDatabase",
        true=frozenset({ConditionType.RECONCILING, ConditionType.PROGRESSING}),
        control=BroadcastState.ACTIVE,
        materialise=True,
    ),
    Case(
        "preparation-wait-no-longer-matters-once-queued",
        facts(preparing_wait=POSTGRES_WAIT, ledger=ledger(pending=10)),
        true=frozenset({ConditionType.RECONCILING, ConditionType.PROGRESSING}),
        control=BroadcastState.ACTIVE,
    ),
    Case(
        "new-broadcast-materialises-and-sends",
        facts(),
        phase=Phase.PENDING,
        reason="Materialising",
        true=frozenset({ConditionType.RECONCILING, ConditionType.PROGRESSING}),
        control=BroadcastState.ACTIVE,
        materialise=True,
    ),
    Case(
        "materialised-not-published-publishes",
        facts(ledger=ledger(published=False, pending=10)),
        reason="Publishing",
        true=frozenset({ConditionType.RECONCILING, ConditionType.PROGRESSING}),
        control=BroadcastState.ACTIVE,
        publish=True,
    ),
    Case(
        "active-and-published-keeps-sending",
        facts(ledger=ledger(pending=4, claimed=2, delivered=4)),
        true=frozenset({ConditionType.RECONCILING, ConditionType.PROGRESSING}),
        control=BroadcastState.ACTIVE,
    ),
    Case(
        "start-in-future-is-scheduled",
        facts(),
        spec=spec(schedule={"startAt": "2026-12-01T10:00:00Z"}),
        phase=Phase.SCHEDULED,
        reason="Scheduled",
        # Waiting as the spec asks is where Git wants it: health checks must not hang on it.
        true=frozenset({ConditionType.READY}),
    ),
    Case(
        "scheduled-and-paused",
        facts(),
        spec=spec(schedule={"startAt": "2026-12-01T10:00:00Z"}, paused=True),
        phase=Phase.PAUSED,
        reason="Scheduled",
        true=frozenset({ConditionType.READY, ConditionType.PAUSED}),
    ),
    Case(
        "start-passed-sends",
        facts(),
        spec=spec(schedule={"startAt": "2026-12-01T08:59:00Z"}),
        phase=Phase.PENDING,
        reason="Materialising",
        true=frozenset({ConditionType.RECONCILING, ConditionType.PROGRESSING}),
        control=BroadcastState.ACTIVE,
        materialise=True,
    ),
    Case(
        "secret-missing-stalls-without-sending",
        facts(token=TokenState.SECRET_NOT_FOUND),
        phase=Phase.STALLED,
        reason="BotSecretNotFound",
        true=frozenset({ConditionType.STALLED}),
    ),
    Case(
        "secret-missing-while-paused-still-stalls",
        facts(token=TokenState.SECRET_NOT_FOUND),
        spec=spec(paused=True),
        phase=Phase.STALLED,
        reason="BotSecretNotFound",
        true=frozenset({ConditionType.STALLED, ConditionType.PAUSED}),
    ),
    Case(
        "secret-without-key-stalls",
        facts(token=TokenState.KEY_NOT_FOUND),
        phase=Phase.STALLED,
        reason="BotSecretNotFound",
        true=frozenset({ConditionType.STALLED}),
    ),
    Case(
        "segment-view-missing-stalls",
        facts(segment_exists=False),
        spec=spec(audience={"segment": "unfinished-poll"}),
        phase=Phase.STALLED,
        reason="SegmentNotFound",
        true=frozenset({ConditionType.STALLED}),
    ),
    Case(
        "paused-holds-senders-but-prepares",
        facts(),
        spec=spec(paused=True),
        phase=Phase.PAUSED,
        reason="Paused",
        true=frozenset({ConditionType.READY, ConditionType.PAUSED}),
        control=BroadcastState.PAUSED,
        materialise=True,
    ),
    Case(
        "paused-mid-way",
        facts(ledger=ledger(pending=5, delivered=5)),
        spec=spec(paused=True),
        phase=Phase.PAUSED,
        reason="Paused",
        true=frozenset({ConditionType.READY, ConditionType.PAUSED}),
        control=BroadcastState.PAUSED,
    ),
    Case(
        "all-terminal-completes",
        facts(ledger=ledger(delivered=7, blocked=1, failed=1, uncertain=1)),
        phase=Phase.COMPLETED,
        reason="Complete",
        true=frozenset({ConditionType.READY, ConditionType.COMPLETE}),
        control=BroadcastState.STOPPED,
        purge=True,
        completion=CompletionOutcome.COMPLETE,
    ),
    Case(
        "empty-audience-completes",
        facts(ledger=ledger(total=0)),
        phase=Phase.COMPLETED,
        reason="Complete",
        true=frozenset({ConditionType.READY, ConditionType.COMPLETE}),
        control=BroadcastState.STOPPED,
        purge=True,
        completion=CompletionOutcome.COMPLETE,
    ),
    Case(
        "completion-announced-once",
        facts(ledger=ledger(delivered=10, recorded=True)),
        status=COMPLETE,
        phase=Phase.COMPLETED,
        reason="Complete",
        true=frozenset({ConditionType.READY, ConditionType.COMPLETE}),
        control=BroadcastState.STOPPED,
        purge=True,
    ),
    Case(
        "complete-sticks-after-the-deadline",
        facts(ledger=ledger(delivered=10, recorded=True)),
        spec=spec(schedule={"deadline": "2026-12-01T08:00:00Z"}),
        status=COMPLETE,
        phase=Phase.COMPLETED,
        reason="Complete",
        true=frozenset({ConditionType.READY, ConditionType.COMPLETE}),
        control=BroadcastState.STOPPED,
        purge=True,
    ),
    Case(
        "deadline-passed-stops-and-closes",
        facts(ledger=ledger(pending=6, delivered=4)),
        spec=spec(schedule={"deadline": "2026-12-01T08:00:00Z"}),
        phase=Phase.FAILED,
        reason="DeadlineExceeded",
        true=frozenset({ConditionType.STALLED, ConditionType.FAILED}),
        control=BroadcastState.STOPPED,
        purge=True,
        close="DeadlineExceeded",
    ),
    Case(
        "deadline-closed-rows-announce",
        facts(ledger=ledger(failed=6, delivered=4)),
        spec=spec(schedule={"deadline": "2026-12-01T08:00:00Z"}),
        status=previous(
            spec(schedule={"deadline": "2026-12-01T08:00:00Z"}),
            facts(ledger=ledger(pending=6, delivered=4)),
        ),
        phase=Phase.FAILED,
        reason="DeadlineExceeded",
        true=frozenset({ConditionType.STALLED, ConditionType.FAILED}),
        control=BroadcastState.STOPPED,
        purge=True,
        completion=CompletionOutcome.DEADLINE_EXCEEDED,
    ),
    Case(
        "deadline-passed-before-start",
        facts(),
        spec=spec(schedule={"startAt": "2026-11-30T08:00:00Z", "deadline": "2026-12-01T08:00:00Z"}),
        phase=Phase.FAILED,
        reason="DeadlineExceeded",
        true=frozenset({ConditionType.STALLED, ConditionType.FAILED}),
        control=BroadcastState.STOPPED,
        purge=True,
        close="DeadlineExceeded",
        # Nothing materialised: announced on the way into the final status, once.
        completion=CompletionOutcome.DEADLINE_EXCEEDED,
    ),
    Case(
        "content-rejected-fails",
        facts(fault=fault(FaultReason.CONTENT_REJECTED), ledger=ledger(pending=9, failed=1)),
        phase=Phase.FAILED,
        reason="ContentRejected",
        true=frozenset({ConditionType.STALLED, ConditionType.FAILED}),
        control=BroadcastState.STOPPED,
        purge=True,
        close="ContentRejected",
    ),
    Case(
        "content-rejected-sticks-without-the-fault",
        facts(ledger=ledger(failed=10)),
        status=CONTENT_REJECTED,
        phase=Phase.FAILED,
        reason="ContentRejected",
        true=frozenset({ConditionType.STALLED, ConditionType.FAILED}),
        control=BroadcastState.STOPPED,
        purge=True,
        completion=CompletionOutcome.FAILED,
    ),
    Case(
        "budget-exhausted-pauses-and-stalls",
        facts(fault=fault(FaultReason.BUDGET_EXHAUSTED), ledger=ledger(pending=10)),
        spec=spec(rate=PAID),
        phase=Phase.STALLED,
        reason="BudgetExhausted",
        true=frozenset({ConditionType.PAUSED, ConditionType.STALLED}),
        control=BroadcastState.PAUSED,
    ),
    Case(
        "the-bot-s-daily-budget-holds-the-broadcast-today",
        facts(fault=fault(FaultReason.DAILY_BUDGET_EXHAUSTED), ledger=ledger(pending=10)),
        spec=spec(rate=PAID),
        phase=Phase.STALLED,
        reason="DailyBudgetExhausted",
        true=frozenset({ConditionType.PAUSED, ConditionType.STALLED}),
        control=BroadcastState.PAUSED,
    ),
    Case(
        "a-new-utc-day-answers-the-daily-budget",
        facts(
            fault=fault(FaultReason.DAILY_BUDGET_EXHAUSTED).model_copy(
                update={"at": NOW - timedelta(hours=10)}
            ),
            ledger=ledger(pending=10),
        ),
        spec=spec(rate=PAID),
        true=frozenset({ConditionType.RECONCILING, ConditionType.PROGRESSING}),
        control=BroadcastState.ACTIVE,
        clear_fault=True,
    ),
    Case(
        "budget-raised-resumes",
        facts(fault=fault(FaultReason.BUDGET_EXHAUSTED), ledger=ledger(pending=10), generation=2),
        spec=spec(rate=PAID),
        status=BUDGET,
        true=frozenset({ConditionType.RECONCILING, ConditionType.PROGRESSING}),
        control=BroadcastState.ACTIVE,
        clear_fault=True,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_plan(case: Case) -> None:
    result = plan(spec=case.spec, status=case.status, facts=case.facts, now=NOW)
    st = result.status
    held = {c.type for c in st.conditions if c.status is T}
    assert (st.phase, held) == (case.phase, set(case.true))
    assert st.condition(ConditionType.READY).reason == case.reason  # type: ignore[union-attr]
    assert result.control == case.control
    assert (result.materialise, result.publish) == (case.materialise, case.publish)
    assert result.purge_work == case.purge
    assert result.close_pending == case.close
    assert result.completion == case.completion
    assert result.clear_fault == case.clear_fault
    # observedGeneration is written whatever the situation, paused or not.
    assert st.observed_generation == case.facts.generation
    assert {c.observed_generation for c in st.conditions} == {case.facts.generation}
    assert [c.type for c in st.conditions] == list(ConditionType)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_ready_is_neither_reconciling_nor_stalled(case: Case) -> None:
    """kstatus reads Reconciling and Stalled first and Ready last; they never contradict."""
    st = plan(spec=case.spec, status=case.status, facts=case.facts, now=NOW).status

    def holds(type_: ConditionType) -> bool:
        c = st.condition(type_)
        return c is not None and c.status is T

    assert holds(ConditionType.READY) == (
        not holds(ConditionType.RECONCILING) and not holds(ConditionType.STALLED)
    )
    assert not (holds(ConditionType.RECONCILING) and holds(ConditionType.STALLED))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_failed_is_the_phase_of_final_stalls_only(case: Case) -> None:
    """Phase Failed means stopped for good (the Failed condition); a stall that a fix undoes
    shows as Stalled, so nobody gives up on a Broadcast that will go on."""
    st = plan(spec=case.spec, status=case.status, facts=case.facts, now=NOW).status
    held = {c.type for c in st.conditions if c.status is T}
    assert (st.phase is Phase.FAILED) == (ConditionType.FAILED in held)
    recoverable = ConditionType.STALLED in held and ConditionType.FAILED not in held
    assert (st.phase is Phase.STALLED) == recoverable


def test_a_stall_goes_on_once_fixed() -> None:
    stalled = previous(spec(), facts(token=TokenState.SECRET_NOT_FOUND))
    assert stalled.phase is Phase.STALLED
    fixed = plan(spec=spec(), status=stalled, facts=facts(), now=NOW)
    assert fixed.status.phase is Phase.PENDING
    assert fixed.control is BroadcastState.ACTIVE
    assert fixed.status.condition(ConditionType.STALLED).status is F  # type: ignore[union-attr]


def test_budget_raised_asks_to_clear_the_fault() -> None:
    result = plan(
        spec=spec(rate=PAID),
        status=BUDGET,
        facts=facts(
            fault=fault(FaultReason.BUDGET_EXHAUSTED), ledger=ledger(pending=10), generation=2
        ),
        now=NOW,
    )
    assert result.clear_fault


def test_secret_message_is_readable() -> None:
    result = plan(spec=spec(), status=None, facts=facts(token=TokenState.SECRET_NOT_FOUND), now=NOW)
    stalled = result.status.condition(ConditionType.STALLED)
    assert stalled is not None
    assert "Secret 'shop-bot' was not found" in stalled.message
    assert result.events[0].type is EventType.WARNING


def _run(status: BroadcastStatus | None, f: Facts, *, now: datetime = NOW, **kw: Any) -> Plan:
    return plan(spec=spec(**kw), status=status, facts=f, now=now)


def test_counts_progress_and_pending_includes_claimed() -> None:
    st = _run(
        None, facts(ledger=ledger(total=8, pending=3, claimed=1, delivered=2, blocked=1, failed=1))
    ).status
    assert (st.total, st.pending, st.delivered, st.blocked, st.failed) == (8, 4, 2, 1, 1)
    assert st.progress == "50%"


def test_progress_never_rounds_up_to_done() -> None:
    st = _run(None, facts(ledger=ledger(total=1000, pending=1, delivered=999))).status
    assert st.progress == "99%"


def test_rate_and_eta_from_the_previous_sample() -> None:
    sample = RateSample(terminal=0, at=NOW - timedelta(seconds=10))
    st = _run(
        None, facts(ledger=ledger(total=300, pending=200, delivered=100), rate_sample=sample)
    ).status
    assert st.observed_rate == 10.0
    assert st.eta == NOW + timedelta(seconds=20)
    assert st.started_at == NOW


def test_unchanged_situation_keeps_transition_times_and_is_not_a_transition() -> None:
    first = _run(None, facts(ledger=ledger(pending=10)))
    later = _run(
        first.status, facts(ledger=ledger(pending=5, delivered=5)), now=NOW + timedelta(minutes=1)
    )
    assert not later.transition
    assert later.events == ()
    assert [c.last_transition_time for c in later.status.conditions] == [NOW] * len(ConditionType)
    assert later.status.delivered == 5


def test_pause_is_a_transition_with_an_event_and_new_generation() -> None:
    first = _run(None, facts(ledger=ledger(pending=10)))
    paused = plan(
        spec=spec(paused=True),
        status=first.status,
        facts=facts(ledger=ledger(pending=10), generation=2),
        now=NOW + timedelta(seconds=30),
    )
    assert paused.transition
    assert [(e.type, e.reason) for e in paused.events] == [(EventType.NORMAL, "Paused")]
    cond = paused.status.condition(ConditionType.PAUSED)
    assert cond is not None
    assert (cond.status, cond.last_transition_time, cond.observed_generation) == (
        T,
        NOW + timedelta(seconds=30),
        2,
    )
    assert paused.status.eta is None


def test_generation_change_alone_is_written_at_once() -> None:
    first = _run(None, facts(ledger=ledger(pending=10)))
    again = _run(first.status, facts(ledger=ledger(pending=10), generation=2))
    assert again.transition
    assert again.events == ()


def test_sending_is_what_scaling_counts() -> None:
    assert _run(None, facts(ledger=ledger(pending=1))).sending
    assert not _run(None, facts(ledger=ledger(pending=1)), paused=True).sending
    assert not _run(None, facts(token=TokenState.SECRET_NOT_FOUND)).sending
    assert all(c.status is F for c in COMPLETE.conditions if c.type is ConditionType.STALLED)


@pytest.mark.parametrize(
    ("starts_in", "paused", "wanted"),
    [
        pytest.param(timedelta(seconds=20), False, True, id="within-the-warm-up"),
        pytest.param(timedelta(seconds=30), False, True, id="at-the-warm-up"),
        pytest.param(timedelta(minutes=5), False, False, id="later"),
        pytest.param(timedelta(seconds=20), True, False, id="paused"),
    ],
)
def test_senders_are_wanted_a_warm_up_before_the_scheduled_start(
    starts_in: timedelta, paused: bool, wanted: bool
) -> None:
    scheduled = spec(schedule={"startAt": (NOW + starts_in).isoformat()}, paused=paused)
    planned = plan(
        spec=scheduled, status=None, facts=facts(), now=NOW, warm_up=timedelta(seconds=30)
    )
    assert planned.status.phase is (Phase.PAUSED if paused else Phase.SCHEDULED)
    # Nothing is materialised or sent early: only the senders start.
    assert not (planned.materialise or planned.sending or planned.control)
    assert planned.wants_sender is wanted


def test_a_sending_broadcast_wants_a_sender_and_a_dry_run_none() -> None:
    assert _run(None, facts(ledger=ledger(pending=1))).wants_sender
    soon = {"startAt": (NOW + timedelta(seconds=5)).isoformat()}
    dry = plan(
        spec=spec(schedule=soon, dryRun=True),
        status=None,
        facts=facts(),
        now=NOW,
        warm_up=timedelta(seconds=30),
    )
    assert not dry.wants_sender


DEADLINE = spec(schedule={"deadline": "2026-12-01T08:00:00Z"})


@pytest.mark.parametrize(
    ("status", "generation", "expected"),
    [
        pytest.param(None, 1, False, id="never-reconciled"),
        pytest.param(COMPLETE, 1, True, id="complete"),
        pytest.param(COMPLETE, 2, False, id="complete-but-spec-changed-since"),
        pytest.param(
            previous(spec(), facts(ledger=ledger(pending=4, delivered=6))), 1, False, id="sending"
        ),
        pytest.param(
            previous(DEADLINE, facts(ledger=ledger(failed=4, delivered=6))),
            1,
            True,
            id="deadline-passed-every-row-closed",
        ),
        pytest.param(
            previous(DEADLINE, facts(ledger=ledger(claimed=1, failed=3, delivered=6))),
            1,
            False,
            id="deadline-passed-a-claim-still-open",
        ),
        pytest.param(
            previous(spec(), facts(token=TokenState.SECRET_NOT_FOUND)),
            1,
            False,
            id="missing-secret-is-not-final",
        ),
        pytest.param(BUDGET, 1, False, id="budget-spent-is-not-final"),
        pytest.param(
            rejected(None, message="bad", generation=1, now=NOW), 1, True, id="spec-rejected"
        ),
        pytest.param(
            rejected(None, message="bad", generation=1, now=NOW),
            2,
            False,
            id="spec-rejected-then-changed",
        ),
    ],
)
def test_finished(status: BroadcastStatus | None, generation: int, expected: bool) -> None:
    assert finished(status, generation=generation) is expected


def test_waiting_keeps_counts_and_says_what_it_waits_for() -> None:
    sending = previous(spec(), facts(ledger=ledger(pending=4, delivered=6)))
    later = NOW + timedelta(seconds=30)
    st = waiting(sending, wait=POSTGRES_WAIT, generation=2, now=later)
    by_type = {c.type: c for c in st.conditions}
    assert [c.type for c in st.conditions] == list(ConditionType)
    assert (st.delivered, st.pending, st.phase, st.observed_generation) == (6, 4, Phase.SENDING, 2)
    assert by_type[ConditionType.READY].status is F
    assert by_type[ConditionType.READY].reason == "WaitingForDatabase"
    assert by_type[ConditionType.RECONCILING].message == POSTGRES_WAIT.message
    # Reconciling was True already: its transition time is kept; the reason changed only.
    assert by_type[ConditionType.RECONCILING].last_transition_time == NOW
    assert all(c.observed_generation == 2 for c in st.conditions)
    # The next plan from the waiting status is a transition: written at once.
    back = plan(
        spec=spec(),
        status=st,
        facts=facts(ledger=ledger(pending=3, delivered=7), generation=2),
        now=later,
    )
    assert back.transition
    assert back.status.condition(ConditionType.READY).reason == "Sending"  # type: ignore[union-attr]


def test_waiting_on_first_sight_reads_as_pending() -> None:
    st = waiting(None, wait=POSTGRES_WAIT, generation=1, now=NOW)
    assert st.phase is Phase.PENDING
    assert {c.type for c in st.conditions} == {
        ConditionType.READY,
        ConditionType.RECONCILING,
        ConditionType.PROGRESSING,
    }


def test_a_rejected_spec_stalls_with_the_reason_and_keeps_the_counts() -> None:
    sending = previous(spec(), facts(ledger=ledger(pending=4, delivered=6)))
    st = rejected(sending, message="spec.content.text: too long", generation=2, now=NOW)
    by_type = {c.type: c for c in st.conditions}
    assert (st.delivered, st.pending, st.observed_generation) == (6, 4, 2)
    assert by_type[ConditionType.STALLED].status is T
    assert by_type[ConditionType.STALLED].reason == "InvalidSpec"
    assert by_type[ConditionType.STALLED].message == "spec.content.text: too long"
    assert by_type[ConditionType.READY].status is F
    assert by_type[ConditionType.RECONCILING].status is F
    assert all(c.observed_generation == 2 for c in st.conditions)
    # A fixed spec is planned from that status as from any other: nothing of it sticks.
    fixed = plan(
        spec=spec(),
        status=st,
        facts=facts(ledger=ledger(pending=3, delivered=7), generation=3),
        now=NOW,
    )
    assert fixed.status.condition(ConditionType.STALLED).status is F  # type: ignore[union-attr]
    assert fixed.status.condition(ConditionType.READY).reason == "Sending"  # type: ignore[union-attr]


def test_a_deadline_past_on_first_sight_settles_once_with_a_completion() -> None:
    late = spec(schedule={"deadline": "2020-01-01T00:00:00Z"})
    first = plan(spec=late, status=None, facts=facts(ledger=None), now=NOW)
    assert first.status.phase is Phase.FAILED
    assert first.completion == "DeadlineExceeded"
    assert not first.materialise and not first.publish
    assert finished(first.status, generation=1)
    # Were it planned again (a status write lost), the outcome sticks and is not re-announced
    # unless that write was lost before the status said so.
    again = plan(spec=late, status=first.status, facts=facts(ledger=None), now=NOW)
    assert again.completion is None
    assert not again.transition


@pytest.mark.parametrize(
    ("ledger_facts", "queued", "paused", "requeue"),
    [
        pytest.param(ledger(pending=4, delivered=6), 0, False, True, id="pending-and-none-queued"),
        pytest.param(ledger(pending=4, delivered=6), 2, False, False, id="work-still-queued"),
        pytest.param(ledger(pending=4, delivered=6), None, False, False, id="not-looked-at"),
        pytest.param(ledger(claimed=4, delivered=6), 0, False, False, id="only-claims-open"),
        pytest.param(ledger(pending=4, delivered=6), 0, True, False, id="paused"),
        pytest.param(
            ledger(pending=10, published=False), 0, False, False, id="first-round-under-way"
        ),
    ],
)
def test_lost_work_is_queued_again(
    ledger_facts: LedgerFacts, queued: int | None, paused: bool, requeue: bool
) -> None:
    p = plan(
        spec=spec(paused=paused),
        status=None,
        facts=facts(ledger=ledger_facts, queued_work=queued),
        now=NOW,
    )
    assert p.requeue is requeue
    if requeue:
        assert p.publish
        ready = p.status.condition(ConditionType.RECONCILING)
        assert ready is not None and ready.reason == "Publishing"
        assert ready.message == "Queueing work again for 4 recipients: their work was lost."


# --- recall and correction ---------------------------------------------------------------


def _amended(amends: AmendCounts, **counts: Any) -> LedgerFacts:
    return dataclasses.replace(ledger(**counts), amends=amends)


@pytest.mark.parametrize(
    ("case_spec", "led", "control", "reason", "recalled", "close"),
    [
        pytest.param(
            spec(recall=True),
            _amended(AmendCounts(to_recall=6), delivered=6, pending=4),
            BroadcastState.AMENDING,
            "Recalling",
            ConditionStatus.FALSE,
            "Recalled",
            id="recall-mid-send-stops-and-deletes",
        ),
        pytest.param(
            spec(recall=True),
            _amended(AmendCounts(recalled=8, too_old=2), delivered=10),
            BroadcastState.STOPPED,
            "Recalled",
            ConditionStatus.TRUE,
            None,
            id="recall-done",
        ),
        pytest.param(
            spec(correction={"text": "fixed"}),
            _amended(AmendCounts(to_correct=10), delivered=10),
            BroadcastState.AMENDING,
            "Correcting",
            ConditionStatus.FALSE,
            None,
            id="correction-after-completion",
        ),
        pytest.param(
            spec(correction={"text": "fixed"}),
            _amended(AmendCounts(to_correct=3), delivered=3, pending=7),
            BroadcastState.ACTIVE,
            "Sending",
            ConditionStatus.FALSE,
            None,
            id="correction-while-sending-goes-on-sending",
        ),
        pytest.param(
            spec(correction={"text": "fixed"}),
            _amended(AmendCounts(corrected=10), delivered=10),
            BroadcastState.STOPPED,
            "Complete",
            ConditionStatus.FALSE,
            None,
            id="correction-done",
        ),
    ],
)
def test_recall_and_correction(
    case_spec: BroadcastSpec,
    led: LedgerFacts,
    control: BroadcastState,
    reason: str,
    recalled: ConditionStatus,
    close: str | None,
) -> None:
    result = plan(spec=case_spec, status=None, facts=facts(ledger=led), now=NOW)
    assert result.control is control
    assert result.sending is (control is not BroadcastState.STOPPED)
    ready = result.status.condition(ConditionType.READY)
    assert ready is not None
    assert ready.reason == reason
    condition = result.status.condition(ConditionType.RECALLED)
    assert condition is not None
    assert condition.status is recalled
    assert result.close_pending == close
    assert result.status.recalled == led.amends.recalled
    assert result.status.corrected == led.amends.corrected


def test_a_recall_in_progress_is_not_finished() -> None:
    led = _amended(AmendCounts(to_recall=4, recalled=6), delivered=10)
    result = plan(spec=spec(recall=True), status=None, facts=facts(ledger=led), now=NOW)
    assert not finished(result.status, generation=1)
    done = _amended(AmendCounts(recalled=10), delivered=10)
    after = plan(spec=spec(recall=True), status=result.status, facts=facts(ledger=done), now=NOW)
    assert finished(after.status, generation=1)
    assert [event.reason for event in after.events] == ["Recalled"]
