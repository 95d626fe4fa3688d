"""What the operator reports about a Broadcast: ``status``, its conditions and the phase.

Part of the Broadcast contract (:mod:`herald.core.broadcasts`). The conditions are the
contract and follow kstatus (sigs.k8s.io/cli-utils), which Flux, Argo CD and ``kubectl wait``
read; the phase is a one-word summary of them for display. The operator's planner
(:mod:`herald.operator.planning`) decides both.
"""

from __future__ import annotations

import enum
from typing import Annotated

from pydantic import Field

from herald.core.contents import CONTENT_MAX_BUTTONS
from herald.core.contracts import MAX_LANGUAGES, Contract, Timestamp

__all__ = [
    "BroadcastStatus",
    "Condition",
    "ConditionStatus",
    "ConditionType",
    "Counter",
    "Phase",
    "Preview",
]

# metav1.Condition's own constraints, so conditions look like every other controller's.
_REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"


class Phase(enum.StrEnum):
    """Display summary of a Broadcast; the conditions are the contract."""

    PENDING = "Pending"
    SCHEDULED = "Scheduled"
    SENDING = "Sending"
    PAUSED = "Paused"
    # spec.dryRun: a preview in status.preview, nothing materialised or sent.
    DRY_RUN = "DryRun"
    # Cannot go on until someone fixes something (bot Secret, segment view, Stars budget);
    # it goes on by itself once that is done.
    STALLED = "Stalled"
    COMPLETED = "Completed"
    # Stopped for good (content rejected, deadline passed, token revoked): nothing undoes it.
    FAILED = "Failed"


class ConditionType(enum.StrEnum):
    """The conditions a Broadcast reports; one set serves kubectl, kstatus, Argo CD and Flux."""

    # Summary for humans and tools: True when neither Reconciling nor Stalled holds, that is
    # complete, or waiting because the spec says so (startAt ahead, spec.paused), so that
    # kstatus (Flux) reads a scheduled or paused Broadcast as Current, not as in progress.
    READY = "Ready"
    # True while work is in progress (kstatus' "Reconciling"; the pipeline's "Progressing").
    RECONCILING = "Reconciling"
    # True when the broadcast cannot go on; the reason says why (kstatus' "Stalled").
    STALLED = "Stalled"
    # True while spec.paused is in effect (Argo CD shows the resource as Suspended).
    PAUSED = "Paused"
    # True when every recipient is terminal: `kubectl wait --for=condition=Complete`.
    COMPLETE = "Complete"
    # Same state and reason as Reconciling, under the name Deployments and most operators
    # use, so `kubectl wait --for=condition=Progressing` and existing dashboards work.
    PROGRESSING = "Progressing"
    # True when the broadcast stopped for good (content rejected, deadline passed, token
    # revoked): the subset of Stalled that no fix to the cluster undoes.
    FAILED = "Failed"
    # True while spec.dryRun is in effect: the status carries a preview, nothing is sent.
    DRY_RUN = "DryRun"
    # Reported once spec.recall is true: True when every delivered message has a recall
    # outcome (deleted, or too old to delete), False while deleting goes on.
    RECALLED = "Recalled"


class ConditionStatus(enum.StrEnum):
    """Whether a condition holds, as in metav1.Condition."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


Counter = Annotated[int, Field(ge=0, json_schema_extra={"format": "int64"})]


class Condition(Contract):
    """One observation of the Broadcast's state, shaped like metav1.Condition."""

    type: ConditionType = Field(
        description=(
            "Ready: True when neither Reconciling nor Stalled holds: complete, or waiting "
            "as the spec asks (Scheduled, Paused). Reconciling: sending or preparing. "
            "Stalled: cannot go on, the reason says why. Paused: spec.paused is in effect. "
            "Complete: every recipient reached a terminal state. DryRun: spec.dryRun is in "
            "effect, status.preview says what sending would do."
        ),
    )
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        min_length=1,
        max_length=1024,
        pattern=_REASON_PATTERN,
        description="Why the condition is as it is, a CamelCase word such as BotSecretNotFound.",
    )
    message: str = Field(
        max_length=32768,
        description="Human-readable details; may be empty.",
    )
    last_transition_time: Timestamp = Field(
        description="When status last changed (not when the condition was last written).",
    )
    observed_generation: Counter | None = Field(
        default=None,
        description="metadata.generation of the spec this condition was computed from.",
    )


class Preview(Contract):
    """What the Broadcast would do if sent now (spec.dryRun): nothing was materialised."""

    recipients: Counter = Field(
        description="Recipients the audience selects now, deduplicated, blocked users excluded."
    )
    variants: dict[
        str,
        Annotated[
            int,
            Field(
                ge=0,
                json_schema_extra={"format": "int64"},
                description="Recipients who would get this variant.",
            ),
        ],
    ] = Field(
        default_factory=dict,
        max_length=MAX_LANGUAGES + 1,
        description=(
            "Recipients per content variant the message would be rendered in: a localized "
            "language code, or default for the default text (no matching variant, unknown "
            "language, or a chat that is not a subscriber)."
        ),
    )
    messages_per_second: float = Field(
        ge=0,
        description=(
            "The rate the Broadcast would send at: spec.rate.messagesPerSecond, or the "
            "audience over spec.rate.spreadOver, capped by the Bot's limit."
        ),
    )
    estimated_duration: str = Field(
        pattern=r"^([0-9]+h)?([0-9]+m)?([0-9]+s)?$",
        max_length=32,
        description="How long sending would take at that rate, such as 1h6m40s.",
    )
    stars: Counter | None = Field(
        default=None,
        description=(
            "Telegram Stars a paid broadcast (allowPaidBroadcast) would cost at most, "
            "0.1 Star per message. Absent for free broadcasts."
        ),
    )
    generated_at: Timestamp = Field(description="When the audience was counted.")


class BroadcastStatus(Contract):
    """What the operator observed, refreshed every few seconds while the Broadcast runs."""

    phase: Phase | None = Field(
        default=None,
        description=(
            "One-word summary for display, derived from the conditions (which are the "
            "contract): Pending, Scheduled, Sending, Paused, DryRun, Stalled (waits for a "
            "fix, such as a missing Secret or a spent budget, then goes on), Completed or "
            "Failed (stopped for good)."
        ),
    )
    total: Counter = Field(default=0, description="Recipients in the materialised audience.")
    delivered: Counter = Field(
        default=0, description="Recipients Telegram accepted the message for."
    )
    failed: Counter = Field(
        default=0,
        description=(
            "Recipients that could not be reached (chat not found, retries exhausted, "
            "deadline passed)."
        ),
    )
    blocked: Counter = Field(
        default=0,
        description=(
            "Recipients who blocked the bot or deleted their account; they are now inactive "
            "subscribers."
        ),
    )
    pending: Counter = Field(default=0, description="Recipients not yet in a terminal state.")
    uncertain: Counter = Field(
        default=0,
        description=(
            "Recipients whose send was interrupted by a crash before its outcome was "
            "recorded (atMostOnce): they may or may not have the message and are not retried."
        ),
    )
    recalled: Counter = Field(
        default=0,
        description=(
            "Delivered messages deleted after spec.recall was set (the chats no longer see them)."
        ),
    )
    corrected: Counter = Field(
        default=0,
        description="Delivered messages that show the current spec.correction.",
    )
    clicks: (
        dict[
            str,
            Annotated[
                int,
                Field(
                    ge=0,
                    json_schema_extra={"format": "int64"},
                    description="Distinct chats that pressed this callback button.",
                ),
            ],
        ]
        | None
    ) = Field(
        default=None,
        max_length=CONTENT_MAX_BUTTONS,
        description=(
            "Presses of the content's callback buttons: for each callback id, the number of "
            "distinct chats that pressed it. Absent until the first press."
        ),
    )
    total_clicks: Counter = Field(
        default=0,
        description="The clicks of every callback button together (what -o wide shows).",
    )
    progress: str | None = Field(
        default=None,
        pattern=r"^(100|[1-9]?[0-9])%$",
        description="Share of recipients in a terminal state, as a whole percentage like 42%.",
    )
    observed_rate: float | None = Field(
        default=None,
        ge=0,
        description="Messages per second over the last refresh interval, all senders together.",
    )
    effective_rate: float | None = Field(
        default=None,
        ge=0,
        description=(
            "Messages per second the Broadcast is paced at: spec.rate.messagesPerSecond, or "
            "the audience over spec.rate.spreadOver, capped by the Bot's limit. Bots' "
            "Broadcasts running at once also share the Bot's limit."
        ),
    )
    preview: Preview | None = Field(
        default=None,
        description="What spec.dryRun: true counted; absent once the Broadcast sends.",
    )
    started_at: Timestamp | None = Field(
        default=None, description="When the first message was sent."
    )
    completed_at: Timestamp | None = Field(
        default=None,
        description="When every recipient reached a terminal state.",
    )
    eta: Timestamp | None = Field(
        default=None,
        description=(
            "Estimated completion time at the current rate (at effectiveRate with "
            "spreadOver); absent when paused or done."
        ),
    )
    observed_generation: Counter | None = Field(
        default=None,
        description=(
            "metadata.generation of the spec this status reflects; written on every "
            "reconcile, paused or not, so GitOps health checks know the status is current."
        ),
    )
    conditions: tuple[Condition, ...] = Field(
        default=(),
        max_length=16,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
        description=(
            "Ready, Reconciling, Stalled, Paused and Complete, at most one of each type. "
            "Wait for the end with: kubectl wait --for=condition=Complete broadcast/NAME."
        ),
    )

    def condition(self, type_: ConditionType) -> Condition | None:
        """The condition of this type, if reported."""
        return next((c for c in self.conditions if c.type == type_), None)
