"""Prometheus metrics of the operator, in a registry of its own (tests run several).

The reconcile series are shaped like controller-runtime's (``controller_runtime_reconcile_*``)
under Herald's prefix, with the same ``controller`` label, so dashboards and alerts written
for Go controllers read them unchanged:

- ``herald_operator_reconcile_total{controller, result}``: ``success``, ``error``, or
  ``requeue`` when the run left the Broadcast still converging (``Reconciling`` is True),
  which is what controller-runtime's ``Result{Requeue: true}`` means; the level-based timer
  comes back for it.
- ``herald_operator_reconcile_errors_total{controller}`` and
  ``herald_operator_reconcile_time_seconds{controller}``.

The Broadcast series are read at scrape time from what the last reconcile of each Broadcast
saw (its status and spec), so they are exactly as fresh as the status:

- ``herald_broadcasts{phase}`` and ``herald_broadcasts_paused``: counts, no names.
- ``herald_broadcast_rate_limit``, ``herald_broadcast_recipients``, ``herald_broadcast_phase``
  and ``herald_broadcast_status_condition`` carry ``namespace`` and ``name``. They exist only
  for Broadcasts still in play (not finished), so their number is bounded by the Broadcasts
  running at once, not by every Broadcast ever written. No label names a recipient.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from herald.core.broadcasts import BroadcastSpec
from herald.core.statuses import BroadcastStatus, ConditionStatus, ConditionType, Phase

__all__ = ["CONTROLLER", "BroadcastView", "Metrics", "Result", "result_of", "view_of"]

CONTROLLER = "broadcast"

# Reconciles are a token read and a few queries: milliseconds, seconds when the API server
# or Postgres is slow. controller-runtime's buckets reach 60 s for the same reason.
_RECONCILE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# Materialising runs one INSERT ... SELECT: ~1 s per 100k recipients (bench/).
_MATERIALISE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class Result(enum.StrEnum):
    SUCCESS = "success"
    ERROR = "error"
    REQUEUE = "requeue"


# The tables the ledger's retention removes rows from, as the ``table`` label.
_RETAINED_TABLES = ("deliveries", "clicks", "messages")

# Ledger states a status reports, as the ``state`` label of herald_broadcast_recipients.
_STATES = ("pending", "delivered", "failed", "blocked", "uncertain")


@dataclass(frozen=True, slots=True)
class BroadcastView:
    """What the metrics show of one Broadcast, from its last reconcile."""

    namespace: str
    name: str
    phase: Phase
    paused: bool
    messages_per_second: float | None  # the allowed rate, while senders serve it
    recipients: tuple[tuple[str, int], ...]
    conditions: tuple[tuple[str, str], ...]  # (type, status)
    finished: bool  # settled: no per-Broadcast series any more


def view_of(
    *,
    namespace: str,
    name: str,
    spec: BroadcastSpec,
    status: BroadcastStatus,
    sending: bool,
    finished: bool,
) -> BroadcastView:
    return BroadcastView(
        namespace=namespace,
        name=name,
        phase=status.phase or Phase.PENDING,
        paused=spec.paused,
        messages_per_second=float(spec.rate.messages_per_second) if sending else None,
        recipients=tuple((state, int(getattr(status, state))) for state in _STATES),
        conditions=tuple((c.type.value, c.status.value) for c in status.conditions),
        finished=finished,
    )


def result_of(status: BroadcastStatus | None) -> Result:
    """How a finished reconcile counts: ``requeue`` while the Broadcast is converging."""
    if status is None:
        return Result.SUCCESS
    for condition in status.conditions:
        if condition.type is ConditionType.RECONCILING:
            return Result.REQUEUE if condition.status is ConditionStatus.TRUE else Result.SUCCESS
    return Result.SUCCESS


class _Broadcasts(Collector):
    """Gauges computed at scrape time from the views; the scrape runs in the HTTP thread."""

    def __init__(self) -> None:
        self._views: dict[str, BroadcastView] = {}
        self._lock = threading.Lock()

    def put(self, uid: str, view: BroadcastView) -> None:
        with self._lock:
            self._views[uid] = view

    def remove(self, uid: str) -> None:
        with self._lock:
            self._views.pop(uid, None)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            views = list(self._views.values())
        yield from _families(views)


def _families(views: Iterable[BroadcastView]) -> Iterator[GaugeMetricFamily]:
    views = list(views)
    counts = GaugeMetricFamily(
        "herald_broadcasts", "Broadcasts this operator watches, by phase.", labels=["phase"]
    )
    for each in Phase:
        counts.add_metric([each.value], sum(1 for v in views if v.phase is each))
    yield counts
    yield GaugeMetricFamily(
        "herald_broadcasts_paused",
        "Broadcasts with spec.paused in effect (finished ones not counted).",
        value=sum(1 for v in views if v.paused and not v.finished),
    )
    live = [v for v in views if not v.finished]
    rate = GaugeMetricFamily(
        "herald_broadcast_rate_limit",
        "Messages per second a Broadcast may send (spec.rate), while senders serve it.",
        labels=["namespace", "name"],
    )
    recipients = GaugeMetricFamily(
        "herald_broadcast_recipients",
        "Recipients of a Broadcast by ledger state, from its status; pending is the backlog.",
        labels=["namespace", "name", "state"],
    )
    phase = GaugeMetricFamily(
        "herald_broadcast_phase",
        "1 for the Broadcast's current phase, 0 for the others.",
        labels=["namespace", "name", "phase"],
    )
    conditions = GaugeMetricFamily(
        "herald_broadcast_status_condition",
        "1 for the status a condition has, 0 for the other two (kube-state-metrics' shape).",
        labels=["namespace", "name", "type", "status"],
    )
    for v in live:
        if v.messages_per_second is not None:
            rate.add_metric([v.namespace, v.name], v.messages_per_second)
        for state, count in v.recipients:
            recipients.add_metric([v.namespace, v.name, state], count)
        for each in Phase:
            phase.add_metric([v.namespace, v.name, each.value], float(each is v.phase))
        for type_, held in v.conditions:
            for status in ConditionStatus:
                conditions.add_metric(
                    [v.namespace, v.name, type_, status.value], float(status.value == held)
                )
    yield from (rate, recipients, phase, conditions)


class Metrics:
    """The operator's instruments."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.reconciles = Counter(
            "herald_operator_reconcile",
            "Reconciles of Broadcasts, by result (success, error, requeue).",
            ["controller", "result"],
            registry=r,
        )
        self.reconcile_errors = Counter(
            "herald_operator_reconcile_errors",
            "Reconciles that raised; the timer retries them.",
            ["controller"],
            registry=r,
        )
        self.reconcile_time = Histogram(
            "herald_operator_reconcile_time_seconds",
            "How long one reconcile took, waiting for the Broadcast's lock included.",
            ["controller"],
            buckets=_RECONCILE_BUCKETS,
            registry=r,
        )
        self.materialise_time = Histogram(
            "herald_operator_audience_materialise_seconds",
            "How long writing one audience into the ledger took.",
            buckets=_MATERIALISE_BUCKETS,
            registry=r,
        )
        self.materialised = Counter(
            "herald_operator_audience_recipients",
            "Recipients in the audiences materialised (a resumed audience counts again).",
            registry=r,
        )
        self.published_batches = Counter(
            "herald_operator_work_published_batches",
            "Work messages published to JetStream.",
            registry=r,
        )
        self.published_recipients = Counter(
            "herald_operator_work_published_recipients",
            "Recipients in the work messages published.",
            registry=r,
        )
        self.prepare_errors = Counter(
            "herald_operator_prepare_errors",
            "Materialise-and-publish runs that failed; the next resync resumes them.",
            registry=r,
        )
        self.sender_replicas = Gauge(
            "herald_operator_sender_replicas",
            "Sender replicas the active broadcasts need, as last computed.",
            registry=r,
        )
        self.retention_removed = Counter(
            "herald_operator_retention_removed_rows",
            "Rows removed by the ledger's retention (HERALD_LEDGER_RETENTION_DAYS), by table: "
            "deliveries, clicks, messages.",
            ["table"],
            registry=r,
        )
        self.retention_ledgers = Counter(
            "herald_operator_retention_removed_ledgers",
            "Broadcasts whose ledger the retention removed (their counts are kept).",
            registry=r,
        )
        for table in _RETAINED_TABLES:
            self.retention_removed.labels(table)
        self._broadcasts = _Broadcasts()
        r.register(self._broadcasts)
        # Every result from the start, so rate() and ratios see zeros, not missing series.
        for result in Result:
            self.reconciles.labels(CONTROLLER, result.value)
        self.reconcile_errors.labels(CONTROLLER)

    def reconciled(self, result: Result, seconds: float) -> None:
        self.reconciles.labels(CONTROLLER, result.value).inc()
        if result is Result.ERROR:
            self.reconcile_errors.labels(CONTROLLER).inc()
        self.reconcile_time.labels(CONTROLLER).observe(seconds)

    def retained(self, *, ledgers: int, deliveries: int, clicks: int, messages: int) -> None:
        """Count what one retention run removed."""
        self.retention_ledgers.inc(ledgers)
        for table, n in zip(_RETAINED_TABLES, (deliveries, clicks, messages), strict=True):
            self.retention_removed.labels(table).inc(n)

    def observe(self, uid: str, view: BroadcastView) -> None:
        self._broadcasts.put(uid, view)

    def forget(self, uid: str) -> None:
        self._broadcasts.remove(uid)

    def serve(self, port: int) -> None:
        """Expose /metrics on ``port`` (0: do not)."""
        if port:
            start_http_server(port, registry=self.registry)
