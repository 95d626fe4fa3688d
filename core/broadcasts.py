"""The Broadcast custom resource, ``herald.dev/v1alpha1``: the one definition of the contract.

Everything that reads or writes a Broadcast imports these models: the operator parses
``spec`` and writes ``status``, the admin bot builds new Broadcasts, and
:mod:`herald.core.crds` turns the same models into the CRD's OpenAPI schema, so the field
descriptions are what ``kubectl explain broadcast.spec`` prints.

The contract spans six modules, each imported from where it lives:

- this one: the resource's identity (group, version, names), the object and its spec (bot,
  rate, schedule, delivery);
- :mod:`herald.core.audiences`: who receives it;
- :mod:`herald.core.contents`: the message;
- :mod:`herald.core.corrections`: spec.correction, what a delivered message is edited to;
- :mod:`herald.core.statuses`: the status, its conditions and the phase;
- :mod:`herald.core.contracts`: what they share (``CelRule``, the base model, field types).

Over 400 lines because most of it is the text ``kubectl explain`` prints: each field of the
spec carries its description and its CEL rules beside it, and the rate's durations
(``spreadOver``) are parsed here because the rate's own rules check them.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import ClassVar, Final, Literal

from pydantic import ConfigDict, Field

from herald.core.audiences import Audience
from herald.core.contents import Content
from herald.core.contracts import (
    DATA_KEY_PATTERN,
    DNS_SUBDOMAIN_PATTERN,
    CelRule,
    Contract,
    Timestamp,
    WireModel,
    immutable,
)
from herald.core.corrections import Correction
from herald.core.statuses import BroadcastStatus

__all__ = [
    "API_VERSION",
    "DEFAULT_MESSAGES_PER_SECOND",
    "DURATION_PATTERN",
    "FREE_MESSAGES_PER_SECOND",
    "GROUP",
    "KIND",
    "MESSAGES_PER_STAR",
    "PAID_MESSAGES_PER_SECOND",
    "PLURAL",
    "SHORT_NAMES",
    "SINGULAR",
    "VERSION",
    "BotRef",
    "Broadcast",
    "BroadcastSpec",
    "Delivery",
    "ObjectMeta",
    "Rate",
    "Schedule",
    "parse_duration",
    "spec_duration",
]

GROUP = "herald.dev"
VERSION = "v1alpha1"
API_VERSION: Final = "herald.dev/v1alpha1"
KIND: Final = "Broadcast"
PLURAL = "broadcasts"
SINGULAR = "broadcast"
SHORT_NAMES = ("bc",)

# About 30 messages per second per bot for free, up to 1000 with paid broadcasts.
FREE_MESSAGES_PER_SECOND = 30
PAID_MESSAGES_PER_SECOND = 1000
# Below the free ceiling so that the bot's interactive replies, which share the same
# per-bot budget on Telegram's side, do not push the bot into 429s mid-broadcast.
DEFAULT_MESSAGES_PER_SECOND = 25
# Telegram charges 0.1 Star per paid message: a budget of B Stars pays 10 * B messages.
MESSAGES_PER_STAR = 10

# A duration as Kubernetes and Go write them (8h, 90m, 1h30m): hours, minutes, seconds.
DURATION_PATTERN = r"^([0-9]+h)?([0-9]+m)?([0-9]+s)?$"
_DURATION_PARTS = re.compile(r"([0-9]+)([hms])")
_UNIT_SECONDS = {"h": 3600, "m": 60, "s": 1}
_MIN_SPREAD = "1m"
_MAX_SPREAD = "720h"


def parse_duration(value: str) -> timedelta:
    """A duration of :data:`DURATION_PATTERN` (``8h``, ``1h30m``) as a timedelta."""
    if not value or re.fullmatch(DURATION_PATTERN, value) is None:
        raise ValueError(f"{value!r} is not a duration such as 8h, 90m or 1h30m")
    seconds = sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PARTS.findall(value))
    return timedelta(seconds=seconds)


def spec_duration(seconds: float) -> str:
    """Whole seconds, rounded up, in the form of :data:`DURATION_PATTERN` that the spec takes
    (so :func:`parse_duration` reads it back): 3725.2 -> 1h2m6s, 0 -> 0s. The admin bot's
    ``format_duration`` is for people instead: ``1h 02m``."""
    left = int(-(-seconds // 1)) if seconds > 0 else 0
    hours, left = divmod(left, 3600)
    minutes, left = divmod(left, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return text + (f"{left}s" if left or not text else "")


def _spread_fits(spread: str | None) -> bool:
    if spread is None:
        return True
    try:
        duration = parse_duration(spread)
    except ValueError:
        return True  # the pattern words this refusal
    return parse_duration(_MIN_SPREAD) <= duration <= parse_duration(_MAX_SPREAD)


class Delivery(enum.StrEnum):
    """What a crash between sending a message and recording it means for that recipient."""

    AT_MOST_ONCE = "atMostOnce"
    AT_LEAST_ONCE = "atLeastOnce"


class BotRef(Contract):
    """The Bot, in the Broadcast's namespace, that sends. The older form, a Secret holding
    the token, still works and is deprecated."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        # Switching bots mid-broadcast would split one message across two senders and two
        # subscriber lists.
        immutable("botRef"),
    )

    name: str = Field(
        min_length=1,
        max_length=253,
        pattern=DNS_SUBDOMAIN_PATTERN,
        description=(
            "Name of a Bot in the Broadcast's namespace; its subscribers are the audience and "
            "its limits bound the rate. It may be created after the Broadcast. Older form, "
            "deprecated: the name of a Secret holding the token (when no Bot has the name). "
            "Immutable."
        ),
    )
    key: str = Field(
        default="token",
        min_length=1,
        max_length=253,
        pattern=DATA_KEY_PATTERN,
        description=(
            "Older form only (botRef naming a Secret): the key in the Secret's data whose "
            "value is the token. Defaults to token."
        ),
    )


class Rate(Contract):
    """How fast messages leave, across all sender replicas together."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule=f"self.allowPaidBroadcast || self.messagesPerSecond <= {FREE_MESSAGES_PER_SECOND}",
            message=(
                f"messagesPerSecond above {FREE_MESSAGES_PER_SECOND} needs allowPaidBroadcast: "
                f"true (Telegram allows about {FREE_MESSAGES_PER_SECOND} messages per second "
                "per bot for free)"
            ),
            field_path=".messagesPerSecond",
            holds=lambda r: (
                r.allow_paid_broadcast or r.messages_per_second <= FREE_MESSAGES_PER_SECOND
            ),
        ),
        CelRule(
            rule="!has(self.starsBudget) || self.allowPaidBroadcast",
            message="starsBudget limits paid broadcasts: it needs allowPaidBroadcast: true",
            field_path=".starsBudget",
            holds=lambda r: r.stars_budget is None or r.allow_paid_broadcast,
        ),
        CelRule(
            rule=(
                f"!has(self.spreadOver) || (duration(self.spreadOver) >= "
                f"duration('{_MIN_SPREAD}') && duration(self.spreadOver) <= "
                f"duration('{_MAX_SPREAD}'))"
            ),
            message=f"spreadOver must be between {_MIN_SPREAD} and {_MAX_SPREAD}",
            field_path=".spreadOver",
            holds=lambda r: _spread_fits(r.spread_over),
        ),
    )

    messages_per_second: int = Field(
        default=DEFAULT_MESSAGES_PER_SECOND,
        ge=1,
        le=PAID_MESSAGES_PER_SECOND,
        description=(
            f"Messages per second for this Broadcast, summed over all senders. 1 to "
            f"{FREE_MESSAGES_PER_SECOND}, or up to {PAID_MESSAGES_PER_SECOND} with "
            f"allowPaidBroadcast. Defaults to {DEFAULT_MESSAGES_PER_SECOND}, below Telegram's "
            f"free limit of about {FREE_MESSAGES_PER_SECOND} per bot, to leave room for the "
            "bot's other traffic. Broadcasts of the same bot running at once also share the "
            "bot's limit. Can be changed while sending."
        ),
    )
    allow_paid_broadcast: bool = Field(
        default=False,
        description=(
            "Send with allow_paid_broadcast, which lifts Telegram's limit to about "
            f"{PAID_MESSAGES_PER_SECOND} messages per second and is paid in Telegram Stars "
            "from the bot's balance for messages above the free rate. Defaults to false."
        ),
    )
    stars_budget: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Most Telegram Stars this Broadcast may spend on paid broadcasting. When it is "
            "spent the Broadcast stops (Stalled, reason BudgetExhausted). Absent: no limit "
            "beyond the bot's balance. Needs allowPaidBroadcast."
        ),
    )
    spread_over: str | None = Field(
        default=None,
        min_length=2,
        max_length=16,
        pattern=DURATION_PATTERN,
        description=(
            "Spread the sends over this long, for example 8h or 1h30m (between "
            f"{_MIN_SPREAD} and {_MAX_SPREAD}): the Broadcast sends at its audience divided by "
            "this duration, never faster than messagesPerSecond nor the Bot's limit. "
            "status.effectiveRate shows the rate in force and status.eta the end. Absent: "
            "as fast as messagesPerSecond allows."
        ),
    )

    @property
    def spread(self) -> timedelta | None:
        """``spread_over`` as a timedelta."""
        return parse_duration(self.spread_over) if self.spread_over is not None else None


class Schedule(Contract):
    """When sending may happen."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule=(
                "!has(self.startAt) || !has(self.deadline) || "
                "timestamp(self.deadline) > timestamp(self.startAt)"
            ),
            message="deadline must be later than startAt",
            field_path=".deadline",
            holds=lambda s: s.start_at is None or s.deadline is None or s.deadline > s.start_at,
        ),
    )

    start_at: Timestamp | None = Field(
        default=None,
        description=(
            "RFC 3339 time (for example 2026-12-01T09:00:00Z) before which nothing is sent; "
            "until then the Broadcast is Scheduled. Absent or past: start at once."
        ),
    )
    deadline: Timestamp | None = Field(
        default=None,
        description=(
            "RFC 3339 time after which nothing more is sent: recipients not reached by then "
            "are counted as failed with reason DeadlineExceeded and the Broadcast is Stalled. "
            "Must be later than startAt."
        ),
    )


class BroadcastSpec(Contract):
    """What to send, to whom, how fast and when."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        # What a crash means for a row is decided by the delivery it was claimed under: a
        # change mid-broadcast would give one Broadcast's `uncertain` two meanings.
        CelRule(
            rule="self.delivery == oldSelf.delivery",
            message="delivery is immutable once the Broadcast exists; create a new Broadcast "
            "instead",
            field_path=".delivery",
        ),
        # A Broadcast may leave its preview for sending, not the other way: what was
        # materialised or sent cannot be taken back into a preview (pause it instead).
        CelRule(
            rule="!self.dryRun || oldSelf.dryRun",
            message="dryRun can only be turned off: a Broadcast that sends cannot become a "
            "preview; pause it or create a new Broadcast with dryRun: true",
            field_path=".dryRun",
        ),
        # editMessageText does not change a caption, nor editMessageCaption a text.
        CelRule(
            rule=(
                "!has(self.correction) || !has(self.correction.text) || "
                "(!has(self.content.media) && !has(self.content.album))"
            ),
            message="correction.text corrects a text message; media and albums take "
            "correction.caption",
            field_path=".correction",
            holds=lambda s: (
                s.correction is None
                or s.correction.text is None
                or (s.content.media is None and s.content.album is None)
            ),
        ),
        CelRule(
            rule=(
                "!has(self.correction) || !has(self.correction.caption) || "
                "!has(self.content.text) || has(self.content.media) || has(self.content.album)"
            ),
            message="correction.caption corrects media and albums; a text message takes "
            "correction.text",
            field_path=".correction",
            holds=lambda s: (
                s.correction is None
                or s.correction.caption is None
                or s.content.text is None
                or s.content.media is not None
                or s.content.album is not None
            ),
        ),
    )

    bot_ref: BotRef = Field(
        description="The Bot that sends. Immutable.",
    )
    content: Content = Field(
        description=(
            "The message, exactly one kind: text; media or an album with text as its "
            "caption; or copyFrom, a copy of an existing message. Immutable: to send "
            "something else, create a new Broadcast."
        ),
    )
    audience: Audience = Field(
        description=(
            "Who receives the message: the union of subscribers, segment, chatIds and "
            "fromBroadcast, deduplicated, without recipients who blocked the bot. Immutable."
        ),
    )
    rate: Rate = Field(
        default_factory=Rate,
        # Spelled out because the API server checks a default against the CEL rules as it
        # is, before the nested defaults would fill an empty object in.
        json_schema_extra={"default": Rate().model_dump(mode="json", exclude_none=True)},
        description=(
            f"Sending rate; defaults to {DEFAULT_MESSAGES_PER_SECOND} messages per second "
            "without paid broadcasting."
        ),
    )
    schedule: Schedule | None = Field(
        default=None,
        description="Start time and deadline. Absent: start at once, no deadline.",
    )
    delivery: Delivery = Field(
        default=Delivery.AT_MOST_ONCE,
        description=(
            "What a crash between sending a message and recording it means. Telegram has "
            "no idempotency key, so exactly-once is impossible. atMostOnce (default): the "
            "recipient is counted as uncertain and never sent again. atLeastOnce: the "
            "message is sent again, so the recipient may get it twice. Immutable."
        ),
    )
    paused: bool = Field(
        default=False,
        description=(
            "Pause switch: true stops new sends within about a second; false resumes where "
            "sending stopped, without sending anything twice. Example: kubectl patch "
            'broadcast NAME --type=merge -p \'{"spec":{"paused":true}}\'.'
        ),
    )
    dry_run: bool = Field(
        default=False,
        description=(
            "Preview: true materialises nothing and sends nothing; the operator writes "
            "status.preview (recipients after deduplication and without blocked users, per "
            "language variant, the estimated duration, the Stars cost of a paid broadcast) "
            "and the DryRun condition. Setting it to false starts the Broadcast; it cannot be "
            "set back to true."
        ),
    )
    recall: bool = Field(
        default=False,
        description=(
            "Take the message back: true stops sending (recipients not reached yet end "
            "failed, reason Recalled) and deletes every delivered message (deleteMessage), "
            "paced under the bot's limit after its transactional messages. May be set at any "
            "time, also after completion. Telegram lets a bot delete its messages in private "
            "chats for 48 hours: an older one stays, and its ledger row says tooOld. Status "
            "counts recalled and sets the Recalled condition. Setting it back to false "
            "undoes nothing."
        ),
    )
    correction: Correction | None = Field(
        default=None,
        description=(
            "Edit every delivered message to this text or caption (editMessageText or "
            "editMessageCaption, keeping the buttons), paced like sending; messages sent "
            "after it was set go out corrected. A new correction later edits again. Status "
            "counts corrected. Not after recall."
        ),
    )


# --- the whole object ------------------------------------------------------------------------


class ObjectMeta(WireModel):
    """The parts of Kubernetes object metadata Herald reads; the rest is ignored."""

    model_config = ConfigDict(extra="ignore")

    name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    generation: int | None = None
    resource_version: str | None = None
    creation_timestamp: datetime | None = None
    labels: Mapping[str, str] | None = None
    annotations: Mapping[str, str] | None = None


class Broadcast(WireModel):
    """A Broadcast as stored by the API server: envelope, spec and status."""

    api_version: Literal["herald.dev/v1alpha1"] = API_VERSION
    kind: Literal["Broadcast"] = KIND
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: BroadcastSpec
    status: BroadcastStatus | None = None
