"""The operator's decisions: from a Broadcast's spec, its last status and the observed facts
to a :class:`Plan` of what to do and what status to report. Pure: no I/O, no clock, no
Kubernetes, NATS or Postgres; the handler gathers :class:`Facts`, calls :func:`plan` and
applies the result, so every decision is testable as a table. One module on purpose,
though over 400 lines: the ordered steps, the conditions they set and the phase derived
from them are read together, like the table of cases in its tests.

The steps run in order and the first that applies decides the broadcast's situation, as in
Flux's reconcilers: an outcome already reached sticks, then faults and the deadline stop it,
then a finished ledger completes it, then the things that make it wait (bot Secret, start
time, segment view, budget, spec.paused), and otherwise it sends.

The conditions follow kstatus (sigs.k8s.io/cli-utils), which Flux and ``kubectl wait`` read:
``Reconciling`` is True while the operator has work to do (materialising, queueing, sending),
``Stalled`` while the broadcast cannot go on without someone fixing something, and ``Ready``
is True exactly when neither holds. So a Broadcast that waits because its spec says so
(``startAt`` in the future, ``spec.paused``) is Ready: it is where Git asked it to be, and a
GitOps health check must not hang on it until the start time or a resume. A sending
broadcast is in progress, as a running Job is; a completed one is Ready for good.

The phase, a display, follows the same line: ``Stalled`` while the broadcast waits for a fix
(a missing Secret or segment view, a spent budget) and goes on once it comes; ``Failed`` only
when it stopped for good (``Failed`` condition: content rejected, deadline passed, token
revoked).
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from herald.core.broadcasts import BroadcastSpec
from herald.core.deliveries import TERMINAL_STATES, DeliveryState
from herald.core.envelopes import (
    BroadcastState,
    CompletionOutcome,
    FaultReason,
    FaultRecord,
    SendLimits,
)
from herald.core.progress import Progress
from herald.core.statuses import (
    BroadcastStatus,
    Condition,
    ConditionStatus,
    ConditionType,
    Phase,
    Preview,
)
from herald.operator import estimating

__all__ = [
    "AmendCounts",
    "EventType",
    "Facts",
    "LedgerFacts",
    "Plan",
    "PlannedEvent",
    "RateSample",
    "Reason",
    "SourceState",
    "TokenState",
    "Wait",
    "derive_phase",
    "finished",
    "plan",
    "preview_due",
    "rejected",
    "waiting",
]


class Reason(enum.StrEnum):
    """CamelCase condition reasons; the same word across all conditions of one situation.

    A sender's fault is reported under its own word (:class:`~herald.core.envelopes.FaultReason`),
    so the reasons a condition can carry are these and those.
    """

    SCHEDULED = "Scheduled"
    MATERIALISING = "Materialising"  # writing the audience into the ledger
    PUBLISHING = "Publishing"  # queueing the ledger as work batches
    SENDING = "Sending"  # everything queued; senders at work
    PAUSED = "Paused"  # spec.paused in effect
    NOT_PAUSED = "NotPaused"
    COMPLETE = "Complete"
    BOT_SECRET_NOT_FOUND = "BotSecretNotFound"  # noqa: S105 - a reason, not a secret
    # getMe did not answer yet for the token: nothing is sent with a token not verified.
    WAITING_FOR_TELEGRAM = "WaitingForTelegram"
    # The Broadcast asks for paid broadcasting and its Bot does not enable it.
    PAID_BROADCAST_DISABLED = "PaidBroadcastDisabled"
    SEGMENT_NOT_FOUND = "SegmentNotFound"
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    # A service did not answer in time; the reconcile is retried (herald.operator.waiting).
    WAITING_FOR_DATABASE = "WaitingForDatabase"
    WAITING_FOR_NATS = "WaitingForNats"
    WAITING_FOR_KUBERNETES = "WaitingForKubernetes"
    # Reconciles of the Broadcast keep failing on something unexpected; retried with backoff.
    RECONCILE_FAILED = "ReconcileFailed"
    # The operator cannot read the spec (a CRD older than the operator); only a new spec helps.
    INVALID_SPEC = "InvalidSpec"
    DRY_RUN = "DryRun"  # spec.dryRun: a preview, nothing sent
    NOT_DRY_RUN = "NotDryRun"
    # spec.audience.fromBroadcast names no Broadcast here, or one of another bot.
    SOURCE_BROADCAST_NOT_FOUND = "SourceBroadcastNotFound"
    SOURCE_BROADCAST_OTHER_BOT = "SourceBroadcastOtherBot"
    # fromBroadcast names the Broadcast itself, or a dry run: neither ever has a ledger to read.
    SOURCE_BROADCAST_UNUSABLE = "SourceBroadcastUnusable"
    # The Broadcast fromBroadcast names still sends: its ledger is read once it finished.
    WAITING_FOR_SOURCE_BROADCAST = "WaitingForSourceBroadcast"
    RECALLING = "Recalling"  # spec.recall: deleting the delivered messages
    RECALLED = "Recalled"  # every delivered message deleted, or too old to delete
    NOT_RECALLED = "NotRecalled"
    CORRECTING = "Correcting"  # spec.correction: editing the delivered messages


# Stalls that end the broadcast for good: work is dropped and pending recipients are closed.
# Others (a missing Secret or segment view, a spent budget) wait for a fix and then go on.
_FINAL_STALLS: frozenset[str] = frozenset({Reason.DEADLINE_EXCEEDED, FaultReason.CONTENT_REJECTED})
# Faults that hold a broadcast until answered, instead of ending it.
_HELD_FAULTS = frozenset({FaultReason.BUDGET_EXHAUSTED, FaultReason.DAILY_BUDGET_EXHAUSTED})
_WAITS = frozenset(
    {Reason.WAITING_FOR_DATABASE, Reason.WAITING_FOR_NATS, Reason.WAITING_FOR_KUBERNETES}
)
# How a final stall is reported on herald.events.completed.
_OUTCOMES: Mapping[str, CompletionOutcome] = {
    Reason.DEADLINE_EXCEEDED: CompletionOutcome.DEADLINE_EXCEEDED
}


class TokenState(enum.StrEnum):
    """What the handler found at spec.botRef."""

    FOUND = "Found"
    SECRET_NOT_FOUND = "SecretNotFound"  # noqa: S105 - a state, not a secret
    KEY_NOT_FOUND = "KeyNotFound"
    MALFORMED = "Malformed"  # not <digits>:<secret>
    REFUSED = "Refused"  # getMe refused the token: never used
    UNVERIFIED = "Unverified"  # getMe did not answer yet
    PAID_DISABLED = "PaidDisabled"  # verified, but the Bot does not allow paid broadcasting


class SourceState(enum.StrEnum):
    """What the handler found where spec.audience.fromBroadcast points."""

    FINISHED = "Finished"  # same bot, every recipient terminal: its ledger can be read
    UNFINISHED = "Unfinished"  # same bot, still sending
    NOT_FOUND = "NotFound"
    OTHER_BOT = "OtherBot"
    ITSELF = "Itself"  # the Broadcast names itself: it would wait for its own end
    DRY_RUN = "DryRun"  # a preview: it never sends, so it never finishes


# How long a dry run's counts stand before they are counted again (subscribers come and go).
PREVIEW_REFRESH = timedelta(minutes=5)


class EventType(enum.StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"


@dataclass(frozen=True, kw_only=True)
class AmendCounts:
    """What the delivered rows show against spec.recall and spec.correction."""

    recalled: int = 0
    too_old: int = 0  # past Telegram's 48 hours: still shown
    to_recall: int = 0  # no recall outcome yet
    corrected: int = 0  # showing the current correction
    to_correct: int = 0  # not edited to the current correction yet


@dataclass(frozen=True, kw_only=True)
class LedgerFacts:
    """The broadcast's bookkeeping row and its delivery counts."""

    materialised: bool
    published: bool
    total: int
    counts: Mapping[DeliveryState, int] = field(default_factory=dict)
    completion_recorded: bool = False
    # Distinct chats per callback id (the bot records the presses).
    clicks: Mapping[str, int] = field(default_factory=dict)
    amends: AmendCounts = field(default_factory=AmendCounts)


@dataclass(frozen=True, kw_only=True)
class RateSample:
    """Terminal recipients counted at an earlier moment: the base of observedRate."""

    terminal: int
    at: datetime


@dataclass(frozen=True, kw_only=True)
class Wait:
    """A service the operator waited on in vain: why the broadcast does not move on."""

    reason: Reason
    message: str


@dataclass(frozen=True, kw_only=True)
class Facts:
    """What the handler observed right before planning."""

    generation: int
    token: TokenState
    # What getMe said (REFUSED, UNVERIFIED), or where the token was looked for (the Secret
    # states); empty: the planner words it from spec.botRef.
    token_detail: str = ""
    segment_exists: bool = True  # True when the audience names no segment
    ledger: LedgerFacts | None = None  # None: the audience was never materialised
    fault: FaultRecord | None = None
    rate_sample: RateSample | None = None
    # The last attempt at materialising or queueing gave up waiting on a service.
    preparing_wait: Wait | None = None
    # Work messages of a published broadcast in its consumer; None when not looked at.
    queued_work: int | None = None
    # The Bot's limits (None: a Broadcast of the older form, or no Bot yet).
    limits: SendLimits | None = None
    # Where spec.audience.fromBroadcast points (FINISHED when it names none).
    source: SourceState = SourceState.FINISHED
    # A dry run's recipients per Telegram language (None: unknown or no subscriber), when
    # counted for this run (:func:`preview_due`); None: keep the last preview.
    languages: Mapping[str | None, int] | None = None


@dataclass(frozen=True, kw_only=True)
class PlannedEvent:
    type: EventType
    reason: str
    message: str


@dataclass(frozen=True, kw_only=True)
class Plan:
    """What the handler does, in order: ledger and work first, control, then status."""

    materialise: bool = False
    publish: bool = False
    requeue: bool = False  # start a new publishing round first: the queued work was lost
    control: BroadcastState | None = None  # None: leave the control record as it is
    # Messages per second senders pace at (estimating.rate_in_force), for the control record.
    rate: float | None = None
    purge_work: bool = False  # drop queued batches and the consumer
    close_pending: str | None = None  # reason for failing every non-terminal recipient
    clear_fault: bool = False  # the fault was answered by a new spec
    completion: CompletionOutcome | None = None  # publish a CompletionRecord with this outcome
    status: BroadcastStatus
    transition: bool = False  # conditions, phase or observedGeneration changed
    events: tuple[PlannedEvent, ...] = ()

    # Scheduled to start within the warm-up: its senders start now, so that the first
    # message at startAt does not wait for a sender process (or Pod) to come up.
    warm_up: bool = False

    @property
    def sending(self) -> bool:
        """Whether the broadcast is served by a sender now."""
        return self.control in (BroadcastState.ACTIVE, BroadcastState.AMENDING)

    @property
    def wants_sender(self) -> bool:
        """Whether the broadcast needs a sender running (what scaling counts)."""
        return self.sending or self.warm_up


@dataclass(frozen=True, kw_only=True)
class _Situation:
    """The outcome of the ordered steps: one reason, the state of each condition."""

    reason: str
    message: str
    reconciling: bool = False
    stalled: bool = False
    failed: bool = False  # stalled for good
    paused: bool = False
    complete: bool = False
    dry_run: bool = False
    control: BroadcastState | None = None
    materialise: bool = False
    publish: bool = False
    requeue: bool = False
    purge_work: bool = False
    close_pending: str | None = None
    clear_fault: bool = False


def _final(prev: BroadcastStatus) -> _Situation | None:
    """An outcome already reported sticks: completion and final stalls are not undone."""
    complete = prev.condition(ConditionType.COMPLETE)
    if complete is not None and complete.status is ConditionStatus.TRUE:
        return _Situation(
            reason=Reason.COMPLETE,
            message=complete.message,
            complete=True,
            control=BroadcastState.STOPPED,
            purge_work=True,
        )
    stalled = prev.condition(ConditionType.STALLED)
    if (
        stalled is not None
        and stalled.status is ConditionStatus.TRUE
        and stalled.reason in _FINAL_STALLS
    ):
        return _stopped(stalled.reason, stalled.message)
    return None


def _stopped(reason: str, message: str) -> _Situation:
    return _Situation(
        reason=reason,
        message=message,
        stalled=True,
        failed=True,
        control=BroadcastState.STOPPED,
        purge_work=True,
        close_pending=reason,
    )


# Not yet final: status.pending counts them all.
_OPEN_STATES = (DeliveryState.PENDING, DeliveryState.CLAIMED, DeliveryState.SENDING)


def _counts(ledger: LedgerFacts | None) -> tuple[int, int]:
    """(recipients, terminal recipients) of the ledger."""
    if ledger is None:
        return 0, 0
    terminal = sum(n for state, n in ledger.counts.items() if state in TERMINAL_STATES)
    return max(ledger.total, sum(ledger.counts.values())), terminal


def _audience_problem(spec: BroadcastSpec, facts: Facts) -> _Situation | None:
    """What keeps the audience from being read: a missing segment view, a fromBroadcast
    that names no Broadcast of this bot (both Stalled), or one still sending (a wait)."""
    audience = spec.audience
    if not facts.segment_exists:
        return _Situation(
            reason=Reason.SEGMENT_NOT_FOUND,
            message=(
                f"Segment {audience.segment!r} needs a view {audience.segment_view}(chat_id) "
                "in the database; it does not exist. The audience is materialised once it does."
            ),
            stalled=True,
            paused=spec.paused,
        )
    source = audience.from_broadcast
    if source is None or facts.source is SourceState.FINISHED:
        return None
    if facts.source is SourceState.NOT_FOUND:
        return _Situation(
            reason=Reason.SOURCE_BROADCAST_NOT_FOUND,
            message=f"spec.audience.fromBroadcast names Broadcast {source.name!r}, which does "
            "not exist in this namespace; the audience is materialised once it does.",
            stalled=True,
            paused=spec.paused,
        )
    if facts.source is SourceState.OTHER_BOT:
        return _Situation(
            reason=Reason.SOURCE_BROADCAST_OTHER_BOT,
            message=f"spec.audience.fromBroadcast names Broadcast {source.name!r}, which is "
            f"sent by another bot; only a Broadcast of Bot {spec.bot_ref.name!r} can be "
            "sent again.",
            stalled=True,
            paused=spec.paused,
        )
    if facts.source in (SourceState.ITSELF, SourceState.DRY_RUN):
        why = (
            f"this Broadcast itself ({source.name!r})"
            if facts.source is SourceState.ITSELF
            else f"Broadcast {source.name!r}, a dry run that never sends"
        )
        return _Situation(
            reason=Reason.SOURCE_BROADCAST_UNUSABLE,
            message=f"spec.audience.fromBroadcast names {why}: it never has a ledger to send "
            "again from. Name a Broadcast that sent, in a new Broadcast (the audience is "
            "immutable).",
            stalled=True,
            paused=spec.paused,
        )
    return _Situation(
        reason=Reason.WAITING_FOR_SOURCE_BROADCAST,
        message=f"Broadcast {source.name!r} (spec.audience.fromBroadcast) is still sending; "
        "its ledger is read once every recipient of it is terminal.",
        reconciling=True,
        paused=spec.paused,
    )


def _dry_run(spec: BroadcastSpec, facts: Facts, preview: Preview | None) -> _Situation:
    """A preview, unless the audience cannot be read at all (a missing segment view or
    source Broadcast: what a pull request's check should show). A source still sending is
    counted as it is now."""
    problem = _audience_problem(spec, facts)
    if problem is not None and problem.stalled:
        return problem
    return _Situation(
        reason=Reason.DRY_RUN,
        message=_preview_message(spec, preview),
        dry_run=True,
        paused=spec.paused,
    )


def _preview_of(
    spec: BroadcastSpec, prev: BroadcastStatus, facts: Facts, now: datetime
) -> Preview | None:
    """A dry run's preview: counted in this run, or the last one."""
    if not spec.dry_run or facts.ledger is not None:
        return None
    if facts.languages is None:
        return prev.preview
    return estimating.preview(
        content=spec.content,
        rate=spec.rate,
        limits=facts.limits,
        languages=facts.languages,
        now=now,
    )


def _preview_message(spec: BroadcastSpec, preview: Preview | None) -> str:
    head = "spec.dryRun is true: nothing is materialised or sent"
    tail = "set spec.dryRun to false to send."
    if preview is None:
        return f"{head}; the audience is being counted; {tail}"
    cost = ""
    if preview.stars is not None:
        cost = f", at most {preview.stars} Stars"
        budget = spec.rate.stars_budget
        if budget is not None and budget < preview.stars:
            cost += f" (more than the starsBudget of {budget}: sending would stop there)"
    return (
        f"{head}. It would reach {preview.recipients} recipients in about "
        f"{preview.estimated_duration} at {preview.messages_per_second:g} messages per "
        f"second{cost} (status.preview); {tail}"
    )


def preview_due(status: BroadcastStatus | None, *, generation: int, now: datetime) -> bool:
    """Whether a dry run's audience is to be counted (again) in this run."""
    if status is None or status.preview is None or status.observed_generation != generation:
        return True
    return now - status.preview.generated_at >= PREVIEW_REFRESH


def _situation(
    *,
    spec: BroadcastSpec,
    prev: BroadcastStatus,
    facts: Facts,
    now: datetime,
    preview: Preview | None = None,
) -> _Situation:
    final = _final(prev)
    if final is not None:
        return final
    if spec.recall:
        # Nothing more is sent: what was not reached yet ends failed, reason Recalled.
        total, terminal = _counts(facts.ledger)
        return _Situation(
            reason=Reason.RECALLED,
            message="spec.recall is true: nothing more is sent.",
            complete=facts.ledger is None or terminal == total,
            control=BroadcastState.AMENDING,
            purge_work=True,
            close_pending=Reason.RECALLED,
        )

    fault = facts.fault
    if fault is not None and fault.reason is FaultReason.DAILY_BUDGET_EXHAUSTED:
        if fault.at.astimezone(UTC).date() == now.astimezone(UTC).date():
            return _Situation(
                reason=FaultReason.DAILY_BUDGET_EXHAUSTED,
                message=f"{fault.message} (the Bot's spec.limits.paid.starsPerDay).",
                stalled=True,
                paused=True,
                control=BroadcastState.PAUSED,
            )
        fault = None  # a new UTC day: a new budget
    if fault is not None and fault.reason not in _HELD_FAULTS:
        return _stopped(fault.reason, fault.message)

    ledger = facts.ledger
    total, terminal = _counts(ledger)
    all_terminal = ledger is not None and ledger.materialised and terminal == total

    deadline = spec.schedule.deadline if spec.schedule else None
    if deadline is not None and now >= deadline and not all_terminal:
        return _stopped(
            Reason.DEADLINE_EXCEEDED,
            f"The deadline {deadline.isoformat()} passed with {total - terminal} recipients "
            "not reached; they are marked failed and nothing more is sent.",
        )

    if all_terminal:
        return _Situation(
            reason=Reason.COMPLETE,
            message=f"All {total} recipients reached a terminal state.",
            complete=True,
            control=BroadcastState.STOPPED,
            purge_work=True,
        )

    token_problem = _token_problem(spec, facts)
    if token_problem is not None:
        return token_problem

    if spec.dry_run and ledger is None:
        return _dry_run(spec, facts, preview)

    start_at = spec.schedule.start_at if spec.schedule else None
    if start_at is not None and now < start_at and ledger is None:
        return _Situation(
            reason=Reason.SCHEDULED,
            message=f"Sending starts at {start_at.isoformat()}.",
            paused=spec.paused,
        )

    if ledger is None or not ledger.materialised:
        problem = _audience_problem(spec, facts)
        if problem is not None:
            return problem

    materialise = ledger is None or not ledger.materialised
    publish = not materialise and ledger is not None and not ledger.published
    # A daily budget's fault of an earlier day is answered by the date.
    clear_fault = facts.fault is not None and fault is None
    if fault is not None:  # budget exhausted: hold until a new spec answers it
        previous = prev.condition(ConditionType.PAUSED)
        answered = (
            previous is not None
            and previous.reason == FaultReason.BUDGET_EXHAUSTED
            and previous.observed_generation is not None
            and previous.observed_generation < facts.generation
        )
        if not answered:
            return _Situation(
                reason=FaultReason.BUDGET_EXHAUSTED,
                message=f"{fault.message} Raise spec.rate.starsBudget to go on.",
                stalled=True,
                paused=True,
                control=BroadcastState.PAUSED,
                publish=publish,
            )
        clear_fault = True

    if spec.paused:
        return _Situation(
            reason=Reason.PAUSED,
            message="spec.paused is true: nothing new is sent; false resumes where it stopped.",
            paused=True,
            control=BroadcastState.PAUSED,
            materialise=materialise,
            publish=publish,
            clear_fault=clear_fault,
        )

    # Published, recipients still pending, and nothing of theirs in the consumer: their
    # work is gone (the stream purged, a batch terminated as undecodable). A sender acks a
    # batch only once its rows are terminal, and a pause naks it back, so this is no race.
    waiting_rows = ledger.counts.get(DeliveryState.PENDING, 0) if ledger is not None else 0
    requeue = (
        ledger is not None and ledger.published and waiting_rows > 0 and facts.queued_work == 0
    )
    publish = publish or requeue
    wait = facts.preparing_wait
    if (materialise or publish) and wait is not None:
        reason, message = wait.reason, wait.message
    elif requeue:
        reason = Reason.PUBLISHING
        message = f"Queueing work again for {waiting_rows} recipients: their work was lost."
    elif materialise:
        reason, message = Reason.MATERIALISING, "Writing the audience into the ledger."
    elif publish:
        reason, message = Reason.PUBLISHING, f"Queueing work for {total} recipients."
    else:
        reason, message = Reason.SENDING, f"{total - terminal} of {total} recipients to go."
    return _Situation(
        reason=reason,
        message=message,
        reconciling=True,
        control=BroadcastState.ACTIVE,
        materialise=materialise,
        publish=publish,
        requeue=requeue,
        clear_fault=clear_fault,
    )


def _token_problem(spec: BroadcastSpec, facts: Facts) -> _Situation | None:
    """Why the bot's token keeps the broadcast from sending, if it does."""
    if facts.token is TokenState.REFUSED:
        return _Situation(
            reason=FaultReason.BOT_UNAUTHORIZED,
            message=f"{facts.token_detail}; nothing is sent with this token. Put the bot's "
            "token from @BotFather into its Secret; sending resumes within seconds.",
            stalled=True,
            paused=spec.paused,
        )
    if facts.token is TokenState.UNVERIFIED:
        return _Situation(
            reason=Reason.WAITING_FOR_TELEGRAM,
            message=f"The bot token is not verified yet ({facts.token_detail}); nothing is "
            "sent before getMe answers.",
            reconciling=True,
            paused=spec.paused,
        )
    if facts.token is TokenState.PAID_DISABLED:
        return _Situation(
            reason=Reason.PAID_BROADCAST_DISABLED,
            message=f"rate.allowPaidBroadcast is true but Bot {spec.bot_ref.name!r} does not "
            "enable paid broadcasting (spec.limits.paid.enabled); nothing is sent until one "
            "of them changes.",
            stalled=True,
            paused=spec.paused,
        )
    if facts.token is not TokenState.FOUND:
        ref = spec.bot_ref
        why = {
            TokenState.SECRET_NOT_FOUND: f"Secret {ref.name!r} was not found",
            TokenState.KEY_NOT_FOUND: f"Secret {ref.name!r} has no key {ref.key!r}",
            TokenState.MALFORMED: (
                f"the value of key {ref.key!r} in Secret {ref.name!r} is not a bot token "
                "(<digits>:<secret>)"
            ),
        }[facts.token]
        # The reconcile knows where the token was looked for (a Bot's tokenSecretRef).
        why = facts.token_detail or why
        return _Situation(
            reason=Reason.BOT_SECRET_NOT_FOUND,
            message=f"{why} in this namespace; nothing is sent until it is fixed.",
            stalled=True,
            paused=spec.paused,
        )
    return None


def _amending(spec: BroadcastSpec, s: _Situation, ledger: LedgerFacts | None) -> _Situation:
    """`s` with the recall or correction of what was delivered on top: while delivered
    messages are still to delete or edit, the broadcast is in progress and needs a sender,
    even once sending is over."""
    amends = ledger.amends if ledger is not None else AmendCounts()
    if spec.recall:
        if amends.to_recall:
            return dataclasses.replace(
                s,
                reason=Reason.RECALLING,
                message=f"Deleting {amends.to_recall} delivered messages; "
                f"{amends.recalled} deleted so far.",
                reconciling=True,
                control=BroadcastState.AMENDING,
            )
        old = f"; {amends.too_old} older than 48 hours stay (Telegram allows no deletion)"
        return dataclasses.replace(
            s,
            reason=Reason.RECALLED,
            message=f"{amends.recalled} delivered messages deleted{old if amends.too_old else ''}.",
            control=BroadcastState.STOPPED,
        )
    if spec.correction is None or not amends.to_correct:
        return s
    if s.control is BroadcastState.ACTIVE:
        return dataclasses.replace(
            s, message=f"{s.message} {amends.to_correct} delivered messages to correct."
        )
    if s.control is BroadcastState.STOPPED:
        return dataclasses.replace(
            s,
            reason=Reason.CORRECTING,
            message=f"Editing {amends.to_correct} delivered messages to spec.correction; "
            f"{amends.corrected} corrected so far.",
            reconciling=True,
            control=BroadcastState.AMENDING,
        )
    return s  # paused or waiting for a fix: corrected once it goes on


def _condition(
    type_: ConditionType,
    holds: bool,
    reason: str,
    message: str,
    *,
    prev: BroadcastStatus,
    generation: int,
    now: datetime,
) -> Condition:
    status = ConditionStatus.TRUE if holds else ConditionStatus.FALSE
    before = prev.condition(type_)
    # lastTransitionTime is when status flipped, not when the condition was last written.
    since = before.last_transition_time if before is not None and before.status is status else now
    return Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=since,
        observed_generation=generation,
    )


def derive_phase(conditions: tuple[Condition, ...]) -> Phase:
    """The one-word display, from the conditions alone."""
    by_type = {c.type: c for c in conditions}

    def holds(type_: ConditionType) -> bool:
        c = by_type.get(type_)
        return c is not None and c.status is ConditionStatus.TRUE

    if holds(ConditionType.COMPLETE):
        return Phase.COMPLETED
    if holds(ConditionType.FAILED):
        return Phase.FAILED
    # Before Paused: a paused Broadcast that also cannot go on (budget spent, Secret missing)
    # needs someone to act, which Paused would hide (health.lua reads it the same way).
    if holds(ConditionType.STALLED):
        return Phase.STALLED
    if holds(ConditionType.PAUSED):
        return Phase.PAUSED
    if holds(ConditionType.DRY_RUN):
        return Phase.DRY_RUN
    ready = by_type.get(ConditionType.READY)
    if ready is not None and ready.reason == Reason.SCHEDULED:
        return Phase.SCHEDULED
    reconciling = by_type.get(ConditionType.RECONCILING)
    if (
        holds(ConditionType.RECONCILING)
        and reconciling is not None
        and reconciling.reason in _UNDER_WAY
    ):
        return Phase.SENDING
    return Phase.PENDING


# Reconciling reasons that mean work is queued or going out; materialising, and waiting on
# a service before anything was queued, read as Pending.
_UNDER_WAY = frozenset({Reason.PUBLISHING, Reason.SENDING})


def _observed_rate(
    prev: BroadcastStatus, facts: Facts, *, active: bool, now: datetime
) -> float | None:
    """Messages per second since the last status write (0 once sending stopped)."""
    terminal = _counts(facts.ledger)[1]
    rate: float | None = prev.observed_rate
    sample = facts.rate_sample
    if sample is not None and now > sample.at:
        rate = round(max(terminal - sample.terminal, 0) / (now - sample.at).total_seconds(), 2)
    if not active:
        rate = 0.0 if prev.started_at is not None or terminal else None
    return rate


def _effective_rate(spec: BroadcastSpec, facts: Facts) -> float | None:
    """The rate in force; None while a spread waits for the audience to be counted (the
    ledger's total, once materialised)."""
    ledger = facts.ledger
    materialised = ledger is not None and ledger.materialised
    if not materialised and spec.rate.spread is not None:
        return None
    return estimating.rate_in_force(
        rate=spec.rate, limits=facts.limits, recipients=_counts(ledger)[0] if materialised else None
    )


def _seconds(at: datetime) -> datetime:
    return at.replace(microsecond=0)


def plan(
    *,
    spec: BroadcastSpec,
    status: BroadcastStatus | None,
    facts: Facts,
    now: datetime,
    warm_up: timedelta = timedelta(0),
) -> Plan:
    """Decide what to do about one Broadcast now; `warm_up` is how long before a scheduled
    start its senders are wanted."""
    prev = status or BroadcastStatus()
    now = _seconds(now)
    preview = _preview_of(spec, prev, facts, now)
    s = _amending(
        spec,
        _situation(spec=spec, prev=prev, facts=facts, now=now, preview=preview),
        facts.ledger,
    )
    gen = facts.generation

    def cond(type_: ConditionType, holds: bool, reason: str, message: str) -> Condition:
        return _condition(type_, holds, reason, message, prev=prev, generation=gen, now=now)

    paused_reason = s.reason if s.paused else Reason.NOT_PAUSED
    # kstatus' rule: Current (Ready) when nothing is in progress and nothing is stuck.
    ready = not s.reconciling and not s.stalled
    conditions: tuple[Condition, ...] = (
        cond(ConditionType.READY, ready, s.reason, s.message),
        cond(
            ConditionType.RECONCILING, s.reconciling, s.reason, s.message if s.reconciling else ""
        ),
        cond(ConditionType.STALLED, s.stalled, s.reason, s.message if s.stalled else ""),
        cond(ConditionType.PAUSED, s.paused, paused_reason, s.message if s.paused else ""),
        cond(ConditionType.COMPLETE, s.complete, s.reason, s.message if s.complete else ""),
        cond(
            ConditionType.PROGRESSING, s.reconciling, s.reason, s.message if s.reconciling else ""
        ),
        cond(ConditionType.FAILED, s.failed, s.reason, s.message if s.failed else ""),
        cond(
            ConditionType.DRY_RUN,
            s.dry_run,
            Reason.DRY_RUN if s.dry_run else Reason.NOT_DRY_RUN,
            s.message if s.dry_run else "",
        ),
    )
    conditions = (
        *conditions,
        cond(ConditionType.RECALLED, True, s.reason, s.message)
        if s.reason == Reason.RECALLED
        else cond(
            ConditionType.RECALLED,
            False,
            s.reason if spec.recall else Reason.NOT_RECALLED,
            s.message if spec.recall else "",
        ),
    )
    phase = derive_phase(conditions)

    ledger = facts.ledger
    counts = ledger.counts if ledger is not None else {}
    total, terminal = _counts(ledger)
    pending = sum(counts.get(state, 0) for state in _OPEN_STATES)
    all_terminal = ledger is not None and ledger.materialised and terminal == total

    rate = _observed_rate(prev, facts, active=s.control is BroadcastState.ACTIVE, now=now)

    effective = _effective_rate(spec, facts)
    control = s.control
    if control is BroadcastState.ACTIVE and effective is None:
        control = BroadcastState.PAUSED  # nothing is queued before the count anyway
    # A spread is paced evenly, often below a message per refresh: the rate in force
    # predicts its end better than a few seconds' sample.
    eta_rate = effective if spec.rate.spread is not None else rate

    started_at = prev.started_at
    claimed = counts.get(DeliveryState.CLAIMED, 0) + counts.get(DeliveryState.SENDING, 0)
    if started_at is None and (terminal or claimed):
        started_at = now
    completed_at = prev.completed_at
    if completed_at is None and all_terminal:
        completed_at = now
    eta = None
    if control is BroadcastState.ACTIVE and eta_rate and pending:
        eta = _seconds(now + timedelta(seconds=math.ceil(pending / eta_rate)))

    new_status = BroadcastStatus(
        phase=phase,
        total=total,
        delivered=counts.get(DeliveryState.DELIVERED, 0),
        failed=counts.get(DeliveryState.FAILED, 0),
        blocked=counts.get(DeliveryState.BLOCKED, 0),
        pending=pending,
        uncertain=counts.get(DeliveryState.UNCERTAIN, 0),
        recalled=ledger.amends.recalled if ledger is not None else 0,
        corrected=ledger.amends.corrected if ledger is not None and spec.correction else 0,
        clicks=dict(sorted(ledger.clicks.items()))
        if ledger is not None and ledger.clicks
        else None,
        total_clicks=sum(ledger.clicks.values()) if ledger is not None else 0,
        progress=str(Progress(done=terminal, total=total)) if ledger is not None else None,
        observed_rate=rate,
        effective_rate=effective if not spec.dry_run or ledger is not None else None,
        preview=preview,
        started_at=started_at,
        completed_at=completed_at,
        eta=eta,
        observed_generation=gen,
        conditions=conditions,
    )

    def shape(st: BroadcastStatus) -> list[tuple[str, str, str]]:
        return [(c.type, c.status, c.reason) for c in st.conditions]

    transition = (
        shape(new_status) != shape(prev)
        or new_status.phase != prev.phase
        or new_status.observed_generation != prev.observed_generation
    )
    events: tuple[PlannedEvent, ...] = ()
    before_ready = prev.condition(ConditionType.READY)
    if new_status.phase != prev.phase or before_ready is None or before_ready.reason != s.reason:
        warning = (s.stalled and s.reason != FaultReason.BUDGET_EXHAUSTED) or s.reason in _WAITS
        events = (
            PlannedEvent(
                type=EventType.WARNING if warning else EventType.NORMAL,
                reason=s.reason,
                message=f"{phase}: {s.message}",
            ),
        )

    completion = None
    if all_terminal and ledger is not None and not ledger.completion_recorded:
        if s.complete:
            completion = CompletionOutcome.COMPLETE
        elif s.close_pending is not None:
            completion = _OUTCOMES.get(s.close_pending, CompletionOutcome.FAILED)
    elif ledger is None and s.close_pending is not None and _final(prev) is None:
        # Stopped before anything was materialised (a deadline already past when first
        # seen): no ledger row remembers the announcement, the final status does, since a
        # final situation sticks and a finished Broadcast is not planned again.
        completion = _OUTCOMES.get(s.close_pending, CompletionOutcome.FAILED)

    return Plan(
        materialise=s.materialise,
        publish=s.publish,
        requeue=s.requeue,
        control=control,
        rate=effective,
        purge_work=s.purge_work,
        # Only while something is still open: the rows are closed once.
        close_pending=s.close_pending if not all_terminal else None,
        clear_fault=s.clear_fault,
        completion=completion,
        status=new_status,
        transition=transition,
        events=events,
        warm_up=_warming_up(spec, s, now=now, lead=warm_up),
    )


def _warming_up(spec: BroadcastSpec, s: _Situation, *, now: datetime, lead: timedelta) -> bool:
    start_at = spec.schedule.start_at if spec.schedule else None
    if s.reason != Reason.SCHEDULED or s.paused or start_at is None:
        return False
    return start_at - now <= lead


def finished(status: BroadcastStatus | None, *, generation: int) -> bool:
    """Whether nothing is left to do for this generation: an outcome was reached (completed,
    or stopped for good), every recipient is terminal, and it was reported. The handler
    then does no work at all for the Broadcast until its spec changes."""
    if status is None or status.observed_generation != generation:
        return False
    if _holds(status, ConditionType.STALLED, Reason.INVALID_SPEC):
        return True  # reported; reading the same spec again cannot help
    if status.pending or _holds(status, ConditionType.RECONCILING, None):
        return False  # recalling or correcting goes on after the last send
    final = _final(status)
    # A final situation is reported only after its completion was announced (the handler
    # announces before it writes), so a written one with nothing pending needs nothing more.
    progress = Progress.of(status)
    return final is not None and progress.done == progress.total


def _holds(status: BroadcastStatus, type_: ConditionType, reason: Reason | None) -> bool:
    """Whether the condition is True (for `reason`, unless None)."""
    c = status.condition(type_)
    return (
        c is not None
        and c.status is ConditionStatus.TRUE
        and (reason is None or c.reason == reason)
    )


def waiting(
    status: BroadcastStatus | None, *, wait: Wait, generation: int, now: datetime
) -> BroadcastStatus:
    """The last status with Ready False and Reconciling True for ``wait``: what is reported
    when the facts could not be gathered, so a health check sees why nothing moves.
    Counts and the other conditions are kept as they were last seen."""
    prev = status or BroadcastStatus()
    replaced = {
        ConditionType.READY: False,
        ConditionType.RECONCILING: True,
        ConditionType.PROGRESSING: True,
    }
    conditions = _overridden(
        prev, replaced, wait.reason, wait.message, generation=generation, now=now
    )
    return prev.model_copy(
        update={
            "conditions": conditions,
            "phase": prev.phase or derive_phase(conditions),
            "observed_generation": generation,
        }
    )


def rejected(
    status: BroadcastStatus | None, *, message: str, generation: int, now: datetime
) -> BroadcastStatus:
    """The last status with Stalled True, reason InvalidSpec: what is reported for a spec the
    operator cannot read, so that a GitOps health check fails instead of waiting for ever.
    Nothing is planned for this generation again (:func:`finished`); a new spec is."""
    prev = status or BroadcastStatus()
    replaced = {
        ConditionType.READY: False,
        ConditionType.STALLED: True,
        ConditionType.RECONCILING: False,
        ConditionType.PROGRESSING: False,
    }
    conditions = _overridden(
        prev, replaced, Reason.INVALID_SPEC, message, generation=generation, now=now
    )
    return prev.model_copy(
        update={
            "conditions": conditions,
            "phase": derive_phase(conditions),
            "observed_generation": generation,
        }
    )


def _overridden(
    prev: BroadcastStatus,
    replaced: Mapping[ConditionType, bool],
    reason: str,
    message: str,
    *,
    generation: int,
    now: datetime,
) -> tuple[Condition, ...]:
    """``prev``'s conditions with ``replaced`` set for one reason, the others kept."""
    now = _seconds(now)
    conditions = [
        _condition(type_, holds, reason, message, prev=prev, generation=generation, now=now)
        for type_, holds in replaced.items()
    ]
    kept = tuple(
        c.model_copy(update={"observed_generation": generation})
        for c in prev.conditions
        if c.type not in replaced
    )
    order = list(ConditionType)
    return tuple(sorted((*conditions, *kept), key=lambda c: order.index(c.type)))
