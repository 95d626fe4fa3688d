"""What the bot shows: texts and keyboards computed from Broadcasts, with no I/O.

Keyboards come out as plain rows of :class:`ButtonView` so this module needs no aiogram; the
handlers turn them into Telegram markup in one place (:mod:`herald.bot.keyboards`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from herald.bot.callbacks import BroadcastAction, BroadcastButton, BroadcastRef
from herald.bot.translations import Texts
from herald.core.broadcasts import Broadcast
from herald.core.envelopes import CompletionRecord
from herald.core.progress import Progress
from herald.core.statuses import BroadcastStatus, ConditionStatus, ConditionType

__all__ = [
    "BAR_WIDTH",
    "ButtonView",
    "Keyboard",
    "cancel_keyboard",
    "format_duration",
    "is_terminal",
    "list_text",
    "progress_bar",
    "ref_of",
    "report_text",
    "status_keyboard",
    "status_text",
]

BAR_WIDTH = 10
_FULL = "▓"
_EMPTY = "░"


@dataclass(frozen=True, kw_only=True)
class ButtonView:
    text: str
    data: str


Keyboard = tuple[tuple[ButtonView, ...], ...]


def progress_bar(progress: Progress, *, width: int = BAR_WIDTH) -> str:
    """``▓▓▓░░░░░░░`` for 30%: full only when every recipient is terminal."""
    filled = progress.cells(width)
    return _FULL * filled + _EMPTY * (width - filled)


def format_duration(seconds: float) -> str:
    """``45s``, ``3m 05s``, ``2h 07m``, ``1d 03h``: two units, enough to plan by."""
    total = max(0, int(seconds))
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def ref_of(broadcast: Broadcast) -> BroadcastRef:
    meta = broadcast.metadata
    return BroadcastRef(namespace=meta.namespace or "", name=meta.name or "")


def is_terminal(broadcast: Broadcast) -> bool:
    """Whether nothing about the Broadcast will change any more (live updates stop).

    Read from the conditions, which are the contract, not from the phase: Complete, or Failed
    (stopped for good) once the operator has closed every recipient left open, so the last
    counts are shown. A Stalled Broadcast waits for a fix and then goes on: still live.
    """
    status = broadcast.status
    if status is None:
        return False
    complete = status.condition(ConditionType.COMPLETE)
    failed = status.condition(ConditionType.FAILED)
    if complete is not None and complete.status is ConditionStatus.TRUE:
        return True
    return failed is not None and failed.status is ConditionStatus.TRUE and status.pending == 0


def _phase(broadcast: Broadcast, texts: Texts) -> str:
    status = broadcast.status
    phase = status.phase.value if status is not None and status.phase is not None else "none"
    return texts("phase", phase=phase)


def list_text(broadcasts: Iterable[Broadcast], *, texts: Texts, default_namespace: str) -> str:
    """One line per Broadcast, newest first, with its phase and a progress bar."""
    ordered = sorted(
        broadcasts,
        key=lambda b: (b.metadata.creation_timestamp is not None, b.metadata.creation_timestamp),
        reverse=True,
    )
    if not ordered:
        return texts("list-empty")
    lines = [texts("list-header")]
    for broadcast in ordered:
        progress = Progress.of(broadcast.status)
        lines.append(
            texts(
                "list-line",
                name=ref_of(broadcast).label(default_namespace=default_namespace),
                phase=_phase(broadcast, texts),
                bar=progress_bar(progress),
                percent=str(progress),
            )
        )
    return "\n".join(lines)


def status_text(
    broadcast: Broadcast, *, texts: Texts, default_namespace: str, now: datetime
) -> str:
    """Details of one Broadcast: progress, counts, rate, eta and conditions."""
    status = broadcast.status or BroadcastStatus()
    progress = Progress.of(broadcast.status)
    name = ref_of(broadcast).label(default_namespace=default_namespace)
    lines = [
        texts("status-title", name=name, phase=_phase(broadcast, texts)),
        texts(
            "status-progress",
            bar=progress_bar(progress),
            percent=str(progress),
            done=str(progress.done),
            total=str(progress.total),
        ),
        texts(
            "status-counts",
            delivered=str(status.delivered),
            blocked=str(status.blocked),
            failed=str(status.failed),
            uncertain=str(status.uncertain),
            pending=str(status.pending),
        ),
        texts(
            "status-rate",
            observed=f"{status.observed_rate or 0:.1f}",
            limit=str(broadcast.spec.rate.messages_per_second),
        ),
    ]
    if status.eta is not None and not is_terminal(broadcast):
        lines.append(texts("status-eta", eta=format_duration((status.eta - now).total_seconds())))
    if broadcast.spec.paused:
        lines.append(texts("status-paused"))
    if broadcast.spec.recall:
        lines.append(
            texts("status-recalled", recalled=str(status.recalled), delivered=str(status.delivered))
        )
    if broadcast.spec.correction is not None:
        lines.append(
            texts(
                "status-corrected", corrected=str(status.corrected), delivered=str(status.delivered)
            )
        )
    for condition in status.conditions:
        # What holds, plus Ready whatever its status: its reason says why a Broadcast waits.
        if condition.status is ConditionStatus.TRUE or condition.type is ConditionType.READY:
            lines.append(
                texts(
                    "status-condition",
                    type=condition.type.value,
                    status=condition.status.value,
                    reason=condition.reason,
                    message=condition.message,
                ).rstrip()
            )
    return "\n".join(lines)


def _row(
    texts: Texts, ref: BroadcastRef, default_namespace: str, *pairs: tuple[str, BroadcastAction]
) -> tuple[ButtonView, ...] | None:
    buttons = []
    for key, action in pairs:
        data = BroadcastButton(action=action, ref=ref).pack(default_namespace=default_namespace)
        if data is None:
            return None
        buttons.append(ButtonView(text=texts(key), data=data))
    return tuple(buttons)


def status_keyboard(broadcast: Broadcast, *, texts: Texts, default_namespace: str) -> Keyboard:
    """Pause or Resume (whichever applies), Refresh and Delete; only Refresh and Delete once
    the Broadcast has ended. Empty when the name is too long for callback data."""
    ref = ref_of(broadcast)
    toggle = (
        ("button-resume", BroadcastAction.RESUME)
        if broadcast.spec.paused
        else ("button-pause", BroadcastAction.PAUSE)
    )
    first: Sequence[tuple[str, BroadcastAction]] = (
        [("button-refresh", BroadcastAction.REFRESH)]
        if is_terminal(broadcast)
        else [toggle, ("button-refresh", BroadcastAction.REFRESH)]
    )
    rows = [
        _row(texts, ref, default_namespace, *first),
        _row(texts, ref, default_namespace, ("button-cancel", BroadcastAction.CANCEL)),
    ]
    if any(row is None for row in rows):
        return ()
    return tuple(row for row in rows if row)


def cancel_keyboard(ref: BroadcastRef, *, texts: Texts, default_namespace: str) -> Keyboard:
    """The confirmation asked before a Broadcast is deleted."""
    row = _row(
        texts,
        ref,
        default_namespace,
        ("button-cancel-confirm", BroadcastAction.CANCEL_CONFIRM),
        ("button-cancel-abort", BroadcastAction.CANCEL_ABORT),
    )
    return (row,) if row else ()


def report_text(record: CompletionRecord, *, texts: Texts, default_namespace: str) -> str:
    """What admins are told when a Broadcast ends, successfully or not."""
    ref = BroadcastRef(namespace=record.namespace, name=record.name)
    if record.started_at is not None and record.completed_at is not None:
        duration = format_duration((record.completed_at - record.started_at).total_seconds())
    else:
        duration = "–"
    report = texts(
        "report",
        name=ref.label(default_namespace=default_namespace),
        outcome=record.outcome,
        delivered=str(record.delivered),
        total=str(record.total),
        blocked=str(record.blocked),
        failed=str(record.failed),
        uncertain=str(record.uncertain),
        duration=duration,
    )
    if not record.clicks:
        return report
    # Callback ids are the operator's own words (ASCII, no markup): shown as they are.
    counts = " · ".join(f"{callback} {n}" for callback, n in sorted(record.clicks.items()))
    return report + "\n" + texts("report-clicks", clicks=counts)
