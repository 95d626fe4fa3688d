"""What the sender does about one send: the one mapping from a Telegram outcome to a ledger
state, a reason and an action.

The adapter (:mod:`herald.telegram.client`) translates aiogram's exceptions into an
:class:`~herald.telegram.outcomes.Outcome` once, at the boundary; :func:`judge` decides
everything else. The batch's JetStream verb follows from the ledger: a work message is acked
when all its rows are terminal, and nak'ed with a delay when some are not (released rows,
another sender's claims).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from herald.core.broadcasts import Delivery
from herald.core.deliveries import Amendment, DeliveryState
from herald.core.envelopes import FaultReason
from herald.telegram import lengths
from herald.telegram.outcomes import (
    Outcome,
    OutcomeKind,
    is_chat_not_found,
    is_content_error,
    is_gone,
    is_not_modified,
    is_too_long,
    is_too_old,
)
from herald.telegram.rendering import Rendered

__all__ = [
    "Action",
    "AmendVerdict",
    "Reason",
    "Verdict",
    "backoff_seconds",
    "judge",
    "judge_amend",
    "judge_unsent",
]

# Bounded retries for errors that mean "nothing was sent, try again" (5xx, refused
# connections): three attempts spread over ~1.5 s ride out a blip without holding a row long.
MAX_ATTEMPTS = 3
_BACKOFF_BASE = 0.25
_BACKOFF_CAP = 4.0


class Reason(enum.StrEnum):
    """Why a row ended as it did (CamelCase, the ledger's reason column). Why a broadcast
    cannot go on is a :class:`~herald.core.envelopes.FaultReason`, shared with the operator."""

    BLOCKED = "Blocked"
    DEACTIVATED = "Deactivated"
    CHAT_NOT_FOUND = "ChatNotFound"
    TEXT_TOO_LONG = "TextTooLong"  # too long once this recipient's placeholders were filled
    BAD_REQUEST = "BadRequest"
    SERVER_ERROR = "ServerError"
    NETWORK_ERROR = "NetworkError"
    TIMEOUT = "Timeout"
    SENDER_LOST = "SenderLost"
    DEADLINE_EXCEEDED = "DeadlineExceeded"  # a transactional message's deadline passed


class Action(enum.StrEnum):
    RECORD = "record"  # write the terminal state
    DEACTIVATE = "deactivate"  # write it and mark the subscriber inactive
    RETRY = "retry"  # keep the claim, send again after `delay`
    HALT_BOT = "halt_bot"  # release the row; nobody sends for the bot for `delay`
    TRIP = "trip"  # release the row; the broadcast cannot go on (FaultRecord of `fault`)


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    state: DeliveryState
    action: Action
    reason: str | None = None
    fault: FaultReason | None = None  # set for TRIP only
    delay: float = 0.0


def backoff_seconds(attempt: int) -> float:
    """Exponential: 0.25 s after the first failure, 0.5 s after the second, capped."""
    return float(min(_BACKOFF_CAP, _BACKOFF_BASE * 2 ** max(0, attempt - 1)))


def judge_unsent(rendered: Rendered) -> Verdict | None:
    """The verdict on a call Telegram would refuse for this recipient alone, decided without
    sending it; None: send it. Too long only after the recipient's placeholders were filled
    is such a call (the CRD caps the text as written), and fails the one row, never the
    broadcast, whether or not the variant was proven."""
    if lengths.too_long(rendered):
        return Verdict(
            state=DeliveryState.FAILED, action=Action.RECORD, reason=Reason.TEXT_TOO_LONG
        )
    return None


def judge(
    outcome: Outcome,
    *,
    delivery: Delivery,
    attempt: int,
    proven: bool,
    copying: bool = False,
) -> Verdict:
    """What to do with a row after `outcome`.

    `attempt` counts this row's sends in this process, 1 for the first; `proven` says the
    broadcast's content has been accepted by Telegram at least once, which turns a content
    error from "the broadcast is broken" into "this recipient's message is broken".

    `copying` says the call was copyMessage, for which "chat not found" may be about the
    source chat: Telegram answers it in the same words for the recipient's chat and for a
    source the bot cannot read. The variant's proof decides which: before any copy was
    accepted it is the source, the same for every recipient, and the broadcast stops
    (ContentRejected); once one was, the source is readable and it is this recipient's chat.
    """
    kind = outcome.kind
    if kind is OutcomeKind.OK:
        return Verdict(state=DeliveryState.DELIVERED, action=Action.RECORD)
    if kind is OutcomeKind.RETRY_AFTER:
        # Never early: the bot halts for the whole retry_after, and the row waits as pending.
        return Verdict(
            state=DeliveryState.PENDING,
            action=Action.HALT_BOT,
            delay=max(1.0, outcome.retry_after or 1.0),
        )
    if kind is OutcomeKind.FORBIDDEN:
        deactivated = "deactivated" in outcome.description.lower()
        return Verdict(
            state=DeliveryState.BLOCKED,
            action=Action.DEACTIVATE,
            reason=Reason.DEACTIVATED if deactivated else Reason.BLOCKED,
        )
    if kind is OutcomeKind.UNAUTHORIZED:
        return Verdict(
            state=DeliveryState.PENDING, action=Action.TRIP, fault=FaultReason.BOT_UNAUTHORIZED
        )
    if kind is OutcomeKind.BAD_REQUEST:
        if is_chat_not_found(outcome.description):
            if copying and not proven:
                return Verdict(
                    state=DeliveryState.PENDING,
                    action=Action.TRIP,
                    fault=FaultReason.CONTENT_REJECTED,
                )
            return Verdict(
                state=DeliveryState.FAILED, action=Action.RECORD, reason=Reason.CHAT_NOT_FOUND
            )
        if proven and is_too_long(outcome.description):
            return Verdict(
                state=DeliveryState.FAILED, action=Action.RECORD, reason=Reason.TEXT_TOO_LONG
            )
        if not proven and is_content_error(outcome.description):
            return Verdict(
                state=DeliveryState.PENDING,
                action=Action.TRIP,
                fault=FaultReason.CONTENT_REJECTED,
            )
        return Verdict(
            state=DeliveryState.FAILED,
            action=Action.RECORD,
            reason=f"{Reason.BAD_REQUEST}: {outcome.description}"[:200],
        )
    if kind in (OutcomeKind.SERVER_ERROR, OutcomeKind.NOT_SENT):
        reason = Reason.SERVER_ERROR if kind is OutcomeKind.SERVER_ERROR else Reason.NETWORK_ERROR
        if attempt < MAX_ATTEMPTS:
            return Verdict(
                state=DeliveryState.CLAIMED, action=Action.RETRY, delay=backoff_seconds(attempt)
            )
        return Verdict(state=DeliveryState.FAILED, action=Action.RECORD, reason=reason)
    # MAYBE_SENT: the message may be on the recipient's screen already.
    if delivery is Delivery.AT_MOST_ONCE:
        return Verdict(state=DeliveryState.UNCERTAIN, action=Action.RECORD, reason=Reason.TIMEOUT)
    if attempt < MAX_ATTEMPTS:
        return Verdict(
            state=DeliveryState.CLAIMED, action=Action.RETRY, delay=backoff_seconds(attempt)
        )
    return Verdict(state=DeliveryState.UNCERTAIN, action=Action.RECORD, reason=Reason.TIMEOUT)


@dataclass(frozen=True, slots=True, kw_only=True)
class AmendVerdict:
    """What to do with a delivered row after its deleteMessage or editMessage*: record
    `outcome` (RECORD), ask again after `delay` (RETRY), or give the row back while the bot
    halts (HALT_BOT) or its token is refused (TRIP)."""

    action: Action
    outcome: Amendment | None = None
    delay: float = 0.0


def judge_amend(outcome: Outcome, *, recall: bool, attempt: int) -> AmendVerdict:
    """The one mapping of a deletion's or an edit's answer to what the row's chat sees.

    Deleting or editing again is harmless, so a request that may have gone out is simply
    asked again: a deletion that finds nothing to delete, or an edit that finds the message
    showing the correction already, is what an earlier request left.
    """
    kind = outcome.kind
    done = Amendment.RECALLED if recall else Amendment.CORRECTED
    if kind is OutcomeKind.OK:
        return AmendVerdict(action=Action.RECORD, outcome=done)
    if kind is OutcomeKind.RETRY_AFTER:
        return AmendVerdict(action=Action.HALT_BOT, delay=max(1.0, outcome.retry_after or 1.0))
    if kind is OutcomeKind.UNAUTHORIZED:
        return AmendVerdict(action=Action.TRIP)
    if kind is OutcomeKind.BAD_REQUEST:
        description = outcome.description
        if recall and is_gone(description):
            return AmendVerdict(action=Action.RECORD, outcome=Amendment.RECALLED)
        if recall and is_too_old(description):
            return AmendVerdict(action=Action.RECORD, outcome=Amendment.TOO_OLD)
        if not recall and is_not_modified(description):
            return AmendVerdict(action=Action.RECORD, outcome=Amendment.CORRECTED)
        if not recall and is_gone(description):
            return AmendVerdict(action=Action.RECORD, outcome=Amendment.GONE)
        return AmendVerdict(action=Action.RECORD, outcome=Amendment.FAILED)
    if kind is OutcomeKind.FORBIDDEN:
        # The chat blocked the bot since: Telegram still shows it the message.
        return AmendVerdict(action=Action.RECORD, outcome=Amendment.FAILED)
    if attempt < MAX_ATTEMPTS:
        return AmendVerdict(action=Action.RETRY, delay=backoff_seconds(attempt))
    return AmendVerdict(action=Action.RECORD, outcome=Amendment.FAILED)
