"""What ``kubectl broadcast`` prints, computed from Broadcasts with no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from herald.core.broadcasts import Broadcast
from herald.core.deliveries import LedgerRow
from herald.core.progress import Progress
from herald.core.statuses import BroadcastStatus, ConditionStatus, ConditionType

__all__ = [
    "BAR_WIDTH",
    "LEDGER_HEADER",
    "SendResult",
    "age",
    "ledger_cells",
    "ledger_line",
    "list_table",
    "paused_text",
    "progress_bar",
    "sent_text",
    "status_text",
]

BAR_WIDTH = 30
_FULL = "#"
_EMPTY = "-"
# Conditions shown in `status`, in this order; Progressing and Failed repeat Reconciling and
# Stalled under other names and would only double the table.
_SHOWN = (
    ConditionType.READY,
    ConditionType.RECONCILING,
    ConditionType.STALLED,
    ConditionType.PAUSED,
    ConditionType.COMPLETE,
)


def age(since: datetime | None, *, now: datetime) -> str:
    """Like kubectl's AGE column: ``45s``, ``12m``, ``5h``, ``3d``; ``<unknown>`` if unset."""
    if since is None:
        return "<unknown>"
    seconds = max(0, int((now - since).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size or (unit == "m" and seconds >= size):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def progress_bar(progress: Progress, *, width: int = BAR_WIDTH) -> str:
    """``[#########---------------------]``: full only when every recipient is terminal."""
    filled = progress.cells(width)
    return "[" + _FULL * filled + _EMPTY * (width - filled) + "]"


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ("   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows)
    return "\n".join(line.rstrip() for line in lines)


def _phase(broadcast: Broadcast) -> str:
    status = broadcast.status
    return str(status.phase) if status is not None and status.phase is not None else "Pending"


def list_table(broadcasts: Iterable[Broadcast], *, all_namespaces: bool, now: datetime) -> str:
    """The `list` table, or a kubectl-like line when there is nothing to list."""
    header = ["NAME", "PHASE", "PROGRESS", "DELIVERED", "FAILED", "PENDING", "PAUSED", "AGE"]
    if all_namespaces:
        header.insert(0, "NAMESPACE")
    rows = [header]
    for b in broadcasts:
        status = b.status or BroadcastStatus()
        progress = Progress.of(b.status)
        row = [
            b.metadata.name or "",
            _phase(b),
            str(progress) if progress.counted else "-",
            str(status.delivered),
            str(status.failed),
            str(status.pending),
            "yes" if b.spec.paused else "no",
            age(b.metadata.creation_timestamp, now=now),
        ]
        if all_namespaces:
            row.insert(0, b.metadata.namespace or "")
        rows.append(row)
    if len(rows) == 1:
        return ""
    return _table(rows)


def status_text(broadcast: Broadcast, *, now: datetime) -> str:
    """Everything `status` shows: phase, progress bar, counts, rate, conditions."""
    meta = broadcast.metadata
    status = broadcast.status or BroadcastStatus()
    progress = Progress.of(broadcast.status)
    lines = [
        f"Broadcast:   {meta.namespace}/{meta.name}",
        f"Phase:       {_phase(broadcast)}"
        + ("  (spec.paused: true)" if broadcast.spec.paused else ""),
        f"Progress:    {progress_bar(progress)} {progress}  {progress.done}/{progress.total}",
        f"Recipients:  delivered {status.delivered}, blocked {status.blocked}, "
        f"failed {status.failed}, uncertain {status.uncertain}, pending {status.pending}",
        f"Rate:        {status.observed_rate or 0:.1f} msg/s "
        f"(limit {broadcast.spec.rate.messages_per_second})",
    ]
    if broadcast.spec.rate.spread_over is not None and status.effective_rate is not None:
        lines.append(
            f"Spread:      over {broadcast.spec.rate.spread_over}, at "
            f"{status.effective_rate:g} msg/s"
        )
    preview = status.preview
    if preview is not None:
        variants = ", ".join(f"{k} {n}" for k, n in preview.variants.items())
        stars = f", at most {preview.stars} Stars" if preview.stars is not None else ""
        lines.append(
            f"Preview:     {preview.recipients} recipients ({variants}), about "
            f"{preview.estimated_duration} at {preview.messages_per_second:g} msg/s{stars}"
        )
    if broadcast.spec.recall:
        lines.append(f"Recalled:    {status.recalled} of {status.delivered} delivered messages")
    if broadcast.spec.correction is not None:
        lines.append(f"Corrected:   {status.corrected} of {status.delivered} delivered messages")
    if status.started_at is not None:
        lines.append(f"Started:     {status.started_at.isoformat()}")
    if status.completed_at is not None:
        lines.append(f"Completed:   {status.completed_at.isoformat()}")
    elif status.eta is not None:
        lines.append(f"ETA:         {status.eta.isoformat()}")
    if meta.generation is not None and status.observed_generation != meta.generation:
        seen = status.observed_generation
        lines.append(
            f"Note:        the operator has not yet observed generation {meta.generation} "
            f"(status is of generation {seen if seen is not None else 'none'})"
        )
    by_type = {c.type: c for c in status.conditions}
    shown = [by_type[t] for t in _SHOWN if t in by_type]
    if not shown:
        lines.append("Conditions:  none reported yet")
        return "\n".join(lines)
    lines.append("Conditions:")
    rows = [["  TYPE", "STATUS", "REASON", "AGE", "MESSAGE"]]
    rows += [
        [
            f"  {c.type}",
            str(c.status),
            c.reason,
            age(c.last_transition_time, now=now),
            c.message if c.status is ConditionStatus.TRUE or c.type is ConditionType.READY else "",
        ]
        for c in shown
    ]
    lines.append(_table(rows))
    return "\n".join(lines)


def paused_text(broadcast: Broadcast) -> str:
    """kubectl's one-line answer to a change, e.g. ``broadcast.herald.dev/sale paused``."""
    verb = "paused" if broadcast.spec.paused else "resumed"
    return f"broadcast.herald.dev/{broadcast.metadata.name} {verb}"


@dataclass(frozen=True, kw_only=True)
class SendResult:
    chat_id: int
    ok: bool
    message_id: int | None = None
    error: str = ""


def sent_text(name: str, results: Sequence[SendResult]) -> str:
    """One line per chat, then a summary."""
    lines = [
        f"{r.chat_id}: sent (message {r.message_id})" if r.ok else f"{r.chat_id}: failed: {r.error}"
        for r in results
    ]
    sent = sum(r.ok for r in results)
    lines.append(
        f"broadcast.herald.dev/{name}: test message sent to {sent} of {len(results)} chats; "
        "its audience, ledger and status are untouched"
    )
    return "\n".join(lines)


# The ledger is streamed, so its table cannot fit its columns to the rows: fixed widths, wide
# enough for a group's chat id and a Telegram message id, the reason last and whole.
_LEDGER_WIDTHS = (16, 11, 12, 22)
LEDGER_HEADER = ("CHAT ID", "STATE", "MESSAGE ID", "FINISHED", "REASON")


def ledger_line(cells: Sequence[str]) -> str:
    widths = zip(cells[:-1], _LEDGER_WIDTHS, strict=True)
    fixed = "".join(cell.ljust(width - 1) + " " for cell, width in widths)
    return (fixed + cells[-1]).rstrip()


def ledger_cells(row: LedgerRow) -> tuple[str, ...]:
    finished = (
        row.finished_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if row.finished_at else ""
    )
    message = "" if row.message_id is None else str(row.message_id)
    return (str(row.chat_id), row.state.value, message, finished, row.reason or "")
