"""Records that travel through NATS, defined once and encoded with ormsgpack.

Every record carries a format version ``v``. A decoder refuses versions it does not know
with :class:`DecodeError`, which the receiver treats as bad data (terminate and count), never
as a reason to retry.

Just over 400 lines because it is the one definition of every wire format on NATS: the work
batches, the control and completion records, transactional messages and their outcomes share
the version rule, the encoder and the decoder, and a field is followed from here to both ends.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, ClassVar, NamedTuple, TypeVar

import ormsgpack
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from herald.core import subjects
from herald.core.bots import BotLimits, UpdatesMode
from herald.core.broadcasts import Delivery, Rate
from herald.core.contents import Content
from herald.core.corrections import Correction
from herald.core.messages import MessageState
from herald.core.sealing import KeyRing, SealError

__all__ = [
    "BotHalt",
    "BotRecord",
    "BotSpend",
    "BotTraffic",
    "BroadcastState",
    "CompletionOutcome",
    "CompletionRecord",
    "ControlRecord",
    "DecodeError",
    "FaultReason",
    "FaultRecord",
    "Lease",
    "MessageOutcome",
    "MessageWork",
    "Recipient",
    "SendLimits",
    "SendRate",
    "WorkBatch",
    "decode",
    "encode",
    "encode_work",
]


class DecodeError(ValueError):
    """The bytes are not a record of the expected type and version."""


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    VERSION: ClassVar[int] = 1
    v: int = 1

    @classmethod
    def _from_older(cls, raw: dict[Any, Any]) -> dict[Any, Any] | None:
        """`raw`, written in an older version of this record, in the current one; None when
        this version cannot read it."""
        return None


class Recipient(NamedTuple):
    """What a sender needs to render for one chat; a tuple keeps batches compact."""

    chat_id: int
    language_code: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    username: str | None = None


class WorkBatch(_Record):
    """A slice of one broadcast's ledger, in chat id order. Published with the message id of
    :meth:`msg_id`, so that a re-publish after a crash (same round, same cut) is dropped by
    JetStream, and a queueing of lost work in a new round, or cut otherwise, is not."""

    uid: str
    recipients: list[Recipient]

    def msg_id(self, publish_round: int) -> str:
        """``<uid>:<round>:<first chat id>:<last chat id>``."""
        first, last = self.recipients[0].chat_id, self.recipients[-1].chat_id
        return self.id_of(self.uid, publish_round, first, last)

    @staticmethod
    def id_of(uid: str, publish_round: int, first: int, last: int) -> str:
        return f"{uid}:{publish_round}:{first}:{last}"


class BroadcastState(enum.StrEnum):
    ACTIVE = "active"  # send
    PAUSED = "paused"  # send nothing new; keep the work
    STOPPED = "stopped"  # finished, failed, past its deadline or deleted: drop the work
    # Nothing more is sent (finished, or recalled): only what was delivered is recalled or
    # corrected, as the record's recall and correction say.
    AMENDING = "amending"


class SendRate(BaseModel):
    """A Broadcast's ``spec.rate`` as senders apply it, from :meth:`of` to the pacer.

    None of the CRD's caps are repeated: the API server enforced them on the way in, and a
    benchmark against a server without limits asks one sender for more than Telegram allows.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    messages_per_second: float = Field(gt=0)
    allow_paid_broadcast: bool = False
    stars_budget: int | None = None

    @classmethod
    def of(cls, rate: Rate, *, messages_per_second: float | None = None) -> SendRate:
        """The spec's rate; ``messages_per_second`` replaces its own when the operator
        computed a lower one (spec.rate.spreadOver)."""
        return cls(
            messages_per_second=messages_per_second or rate.messages_per_second,
            allow_paid_broadcast=rate.allow_paid_broadcast,
            stars_budget=rate.stars_budget,
        )


class SendLimits(BaseModel):
    """A Bot's ``spec.limits`` as senders apply them to all the bot's broadcasts together."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    messages_per_second: float = Field(gt=0)
    paid_messages_per_second: float | None = Field(default=None, gt=0)  # None: paid is off
    stars_per_day: int | None = None

    @classmethod
    def of(cls, limits: BotLimits) -> SendLimits:
        paid = limits.paid
        return cls(
            messages_per_second=limits.messages_per_second,
            paid_messages_per_second=paid.messages_per_second if paid.enabled else None,
            stars_per_day=paid.stars_per_day if paid.enabled else None,
        )


# Version 1 of the control record carried these flat, where version 2 nests them in `rate`.
_FLAT_RATE = ("messages_per_second", "allow_paid_broadcast", "stars_budget")


class ControlRecord(_Record):
    """The operator's word to senders about one broadcast (KV, key ``broadcast.<uid>``).

    ``token`` is the bot's token sealed under the token key ring and bound to ``uid``
    (:mod:`herald.core.sealing`): whoever reads the bucket, its files or a backup of them
    learns no token. A stopped broadcast's record carries none. ``bot_id`` is the id getMe
    returned for the token, never one read from the token's text.
    """

    VERSION: ClassVar[int] = 4
    v: int = 4

    uid: str
    namespace: str
    name: str
    generation: int
    bot_id: str
    token: str | None = None
    limits: SendLimits | None = None  # None: a Broadcast of the older form, without a Bot
    content: Content
    rate: SendRate
    delivery: Delivery = Delivery.AT_MOST_ONCE
    state: BroadcastState
    deadline: AwareDatetime | None = None
    # spec.recall: send nothing more, delete every delivered message.
    recall: bool = False
    # spec.correction: what every delivered message is edited to, and new ones sent with.
    correction: Correction | None = None

    def open_token(self, ring: KeyRing) -> str:
        """The bot token in clear; SealError when absent or when it does not open."""
        if self.token is None:
            raise SealError(f"the control record of {self.uid} carries no token")
        return ring.open(self.token, bound_to=self.uid)

    @classmethod
    def _from_older(cls, raw: dict[Any, Any]) -> dict[Any, Any] | None:
        # Records the previous releases wrote outlive the upgrade (until their Broadcast is
        # reconciled again, or deleted): the teardown and the sweep must read them. Their
        # token was in clear and is dropped here: a sender waits for the operator to write
        # the record again, sealed.
        version = raw.get("v")
        if version == 3:
            # Version 4 only added recall and correction, each with a default.
            return {**raw, "v": cls.VERSION}
        if version not in (1, 2):
            return None
        lifted = {key: value for key, value in raw.items() if key not in _FLAT_RATE}
        if version == 1:
            lifted["rate"] = {key: raw[key] for key in _FLAT_RATE if key in raw}
        lifted["token"] = None
        lifted["v"] = cls.VERSION
        return lifted


class BotRecord(_Record):
    """A verified Bot as the admin bot serves it (KV, key ``bot.<namespace>.<name>``).

    Written by the operator once getMe verified the token, deleted when the Bot is gone or
    its token fails. Tokens are sealed and bound to the key, as in :class:`ControlRecord`.
    """

    VERSION: ClassVar[int] = 2
    v: int = 2

    namespace: str
    name: str
    generation: int
    bot_id: str
    username: str
    token: str
    # The Bot's limits, for a sender that holds the bot for its transactional messages
    # alone; None in a record of version 1.
    limits: SendLimits | None = None
    callback_secret: str | None = None  # sealed, like the token; signs outcome callbacks
    admins: tuple[int, ...] = ()
    updates: UpdatesMode = UpdatesMode.POLLING
    webhook_url: str | None = None
    webhook_secret: str | None = None  # sealed, like the token
    default_language: str | None = None

    @property
    def key(self) -> str:
        return subjects.bot_record_key(self.namespace, self.name)

    def open_token(self, ring: KeyRing) -> str:
        return ring.open(self.token, bound_to=self.key)

    def open_webhook_secret(self, ring: KeyRing) -> str | None:
        if self.webhook_secret is None:
            return None
        return ring.open(self.webhook_secret, bound_to=self.key + "/webhook")

    def open_callback_secret(self, ring: KeyRing) -> str | None:
        if self.callback_secret is None:
            return None
        return ring.open(self.callback_secret, bound_to=self.key + "/callbacks")

    @classmethod
    def _from_older(cls, raw: dict[Any, Any]) -> dict[Any, Any] | None:
        # Version 2 only added fields, each with a default.
        return {**raw, "v": cls.VERSION} if raw.get("v") == 1 else None


class FaultReason(enum.StrEnum):
    """Why a sender says a broadcast cannot go on; the operator reports the same word as the
    reason of the Broadcast's Stalled condition."""

    CONTENT_REJECTED = "ContentRejected"  # Telegram refused the content on the first sends
    BOT_UNAUTHORIZED = "BotUnauthorized"  # Telegram refused the token (revoked)
    BUDGET_EXHAUSTED = "BudgetExhausted"  # spec.rate.starsBudget is spent; a raise resumes
    # The Bot's limits.paid.starsPerDay is spent for today (UTC); the next day resumes.
    DAILY_BUDGET_EXHAUSTED = "DailyBudgetExhausted"


class FaultRecord(_Record):
    """A sender's report that the broadcast cannot go on (KV, key ``fault.<uid>``)."""

    uid: str
    reason: FaultReason
    message: str
    at: AwareDatetime


class BotHalt(_Record):
    """Telegram said 429 for this bot: nobody sends for it before ``until``."""

    bot_id: str
    until: AwareDatetime


class BotSpend(_Record):
    """Paid messages a bot sent on one UTC day (KV, key ``spend.<bot_id>``), written by the
    lease holder about once a second, so the next holder goes on counting from it."""

    bot_id: str
    day: str  # YYYY-MM-DD, UTC
    paid: int


class Lease(_Record):
    """The replica that sends for a bot, and until when the lease holds without renewal."""

    bot_id: str
    holder: str
    expires: AwareDatetime


class CompletionOutcome(enum.StrEnum):
    """How a broadcast ended, as the admin bot reports it."""

    COMPLETE = "Complete"  # every recipient reached a terminal state in time
    DEADLINE_EXCEEDED = "DeadlineExceeded"  # recipients left at the deadline were failed
    FAILED = "Failed"  # stopped for good by a fault (content rejected, token revoked)


class CompletionRecord(_Record):
    """Published on ``herald.events.completed`` when a broadcast ends, for the admin bot."""

    VERSION: ClassVar[int] = 2
    v: int = 2

    uid: str
    namespace: str
    name: str
    outcome: CompletionOutcome
    total: int
    delivered: int
    blocked: int
    failed: int
    uncertain: int
    started_at: datetime | None = None
    completed_at: datetime | None = None
    # status.clicks when it ended: distinct chats per callback id (presses may go on after).
    clicks: dict[str, int] = Field(default_factory=dict)

    @classmethod
    def _from_older(cls, raw: dict[Any, Any]) -> dict[Any, Any] | None:
        # Version 2 only added clicks, with a default: records waiting in the stream across
        # the upgrade are still reported.
        return {**raw, "v": cls.VERSION} if raw.get("v") == 1 else None


class MessageWork(_Record):
    """A queued transactional message (JetStream ``herald.messages.<bot id>``), published
    with the message id :attr:`id`, so that a re-publish is dropped by the stream. The row
    is the truth: a sender sends only what it claimed there."""

    id: str
    namespace: str
    bot: str
    chat_id: int
    content: Content
    deadline: AwareDatetime | None = None


class MessageOutcome(_Record):
    """A message reached its final state (core NATS ``herald.outcomes.<bot id>``)."""

    id: str
    state: MessageState


class BotTraffic(_Record):
    """When herald-api last accepted a message for the bot (KV ``traffic.<bot id>``), written
    at most every few seconds per bot. Senders hold a bot with recent traffic, and the operator
    keeps a sender running for it, for ``HERALD_*_TRANSACTIONAL_WINDOW_SECONDS``."""

    bot_id: str
    namespace: str
    name: str
    at: AwareDatetime


_R = TypeVar("_R", bound=_Record)


def encode(record: _Record) -> bytes:
    data: dict[str, Any] = record.model_dump(mode="python", by_alias=False)
    if isinstance(record, ControlRecord | MessageWork):
        data["content"] = record.content.model_dump(mode="json")
    if isinstance(record, ControlRecord) and record.correction is not None:
        data["correction"] = record.correction.model_dump(mode="json")
    return ormsgpack.packb(data, option=ormsgpack.OPT_NAIVE_UTC)


def encode_work(uid: str, recipients: Sequence[Iterable[Any]]) -> bytes:
    """``encode(WorkBatch(uid=uid, recipients=recipients))``, the same bytes, without the
    model: each recipient a row of :class:`Recipient`'s fields, in order. The operator
    queues 10M recipients as 100,000 batches, and building and dumping the model took half
    a millisecond of each (54 s of the queueing); the tests hold the two equal."""
    rows = [tuple(recipient) for recipient in recipients]
    return ormsgpack.packb(
        {"v": WorkBatch.VERSION, "uid": uid, "recipients": rows}, option=ormsgpack.OPT_NAIVE_UTC
    )


def decode(kind: type[_R], data: bytes) -> _R:
    try:
        raw = ormsgpack.unpackb(data)
    except (ormsgpack.MsgpackDecodeError, TypeError, ValueError) as exc:
        raise DecodeError(f"not msgpack: {exc}") from exc
    if not isinstance(raw, dict):
        raise DecodeError(f"a {kind.__name__} is a map, got {type(raw).__name__}")
    version = raw.get("v")
    if version != kind.VERSION:
        current = kind._from_older(raw)
        if current is None:
            raise DecodeError(f"{kind.__name__} version {version!r} is not {kind.VERSION}")
        raw = current
    try:
        return kind.model_validate(raw)
    except ValidationError as exc:
        raise DecodeError(f"invalid {kind.__name__}: {exc.error_count()} errors") from exc
