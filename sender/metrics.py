"""Prometheus metrics of a sender process, in a registry of its own so tests can run several
senders in one process.

Labels. No series carries a recipient, a chat or a broadcast: one sender serves every
broadcast of the bots it holds, so a ``broadcast`` label would grow with every Broadcast
ever sent and outlive each one in Prometheus for its retention. Per-broadcast progress is
the operator's to report (``herald_broadcast_recipients`` from the status, one series per
running Broadcast); the sender's series answer "how is sending going" for the process as a
whole, with labels whose values are fixed sets: ``result`` (Telegram's answer, one of
:class:`~herald.telegram.outcomes.OutcomeKind`), ``state`` (the ledger's terminal states),
``reason`` (bad work and broadcast faults, fixed CamelCase or snake_case words),
``outcome`` (a transactional message's final state).

Series, all prefixed ``herald_sender_``:

- ``messages_total{result}``: Bot API sends finished, by Telegram's answer.
- ``recipients_total{state}``: recipients recorded in a terminal state (delivered, blocked,
  failed, uncertain); what the dashboards call results.
- ``send_duration_seconds``: one Bot API request, from the call to the answer.
- ``retry_after_seconds``: the ``retry_after`` of each 429 received; ``_count`` is the 429s.
- ``rate_limited_seconds_total``: time the bots held here were halted by 429s, whether the
  429 came to this replica or to another (the halt is shared through NATS).
- ``in_flight``: Bot API requests open now. ``bots``: bot leases held.
- ``claimed_rows_total``: ledger rows this sender claimed for sending.
- ``transactional_messages_total{outcome}``: transactional messages that reached a final
  state here (delivered, blocked, failed, uncertain); their sends are counted in
  ``messages_total`` and ``send_duration_seconds`` with the broadcasts'.
- ``bad_work_messages_total{reason}``, ``broadcast_faults_total{reason}``,
  ``ledger_errors_total{operation}``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from herald.core.deliveries import Amendment, DeliveryState
from herald.telegram.outcomes import OutcomeKind

__all__ = ["Metrics"]

# Telegram answers in ~50-300 ms; timeouts (20 s by default) land in the last buckets.
_SEND_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30)
# retry_after is whole seconds: 1-60 in practice, longer after repeated floods.
_RETRY_AFTER_BUCKETS = (1, 2, 3, 5, 10, 20, 30, 60, 120, 300, 600)
_TERMINAL = (
    DeliveryState.DELIVERED,
    DeliveryState.BLOCKED,
    DeliveryState.FAILED,
    DeliveryState.UNCERTAIN,
)


class Metrics:
    """The sender's instruments."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.messages = Counter(
            "herald_sender_messages",
            "Bot API sends finished, by Telegram's answer (ok, retry_after, forbidden, ...).",
            ["result"],
            registry=r,
        )
        self.recipients = Counter(
            "herald_sender_recipients",
            "Recipients recorded in a terminal ledger state.",
            ["state"],
            registry=r,
        )
        self.send_duration = Histogram(
            "herald_sender_send_duration_seconds",
            "Duration of one Bot API send request.",
            buckets=_SEND_BUCKETS,
            registry=r,
        )
        self.retry_after = Histogram(
            "herald_sender_retry_after_seconds",
            "retry_after of the 429 answers received; each halts the bot that long.",
            buckets=_RETRY_AFTER_BUCKETS,
            registry=r,
        )
        self.rate_limited = Counter(
            "herald_sender_rate_limited_seconds",
            "Seconds the bots held here were halted by 429s (here or at another replica).",
            registry=r,
        )
        self.in_flight = Gauge("herald_sender_in_flight", "Bot API requests open now.", registry=r)
        self.claimed = Counter(
            "herald_sender_claimed_rows",
            "Ledger rows claimed for sending.",
            registry=r,
        )
        self.bad_work = Counter(
            "herald_sender_bad_work_messages",
            "Work messages terminated because they cannot be used, by reason.",
            ["reason"],
            registry=r,
        )
        self.faults = Counter(
            "herald_sender_broadcast_faults",
            "Broadcasts this sender stopped, by reason (ContentRejected, BudgetExhausted...).",
            ["reason"],
            registry=r,
        )
        self.ledger_errors = Counter(
            "herald_sender_ledger_errors",
            "Failed ledger round trips, by operation (claim, mark, record); all are retried.",
            ["operation"],
            registry=r,
        )
        self.bots = Gauge("herald_sender_bots", "Bots whose lease this sender holds.", registry=r)
        self.transactional = Counter(
            "herald_sender_transactional_messages",
            "Transactional messages that reached a final state, by outcome.",
            ["outcome"],
            registry=r,
        )
        self.amendments = Counter(
            "herald_sender_amendments",
            "Delivered messages recalled or corrected, by outcome (recalled, tooOld, "
            "corrected, gone, failed).",
            ["outcome"],
            registry=r,
        )
        for amendment in Amendment:
            self.amendments.labels(amendment.value)
        # Fixed label values from the start, so ratios and rate() see zeros, not gaps.
        for kind in OutcomeKind:
            self.messages.labels(kind.value)
        for state in _TERMINAL:
            self.recipients.labels(state.value)
            self.transactional.labels(state.value)
        for operation in ("claim", "mark", "record", "amend"):
            self.ledger_errors.labels(operation)

    def serve(self, port: int) -> None:
        """Expose /metrics on `port` (0: do not)."""
        if port:
            start_http_server(port, registry=self.registry)
