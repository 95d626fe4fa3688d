"""Prometheus metrics of a sender process. No label names a recipient or a chat: a label
value per recipient would turn one broadcast into a million time series."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

__all__ = ["Metrics"]


class Metrics:
    """The sender's instruments, in their own registry so tests can run several senders."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.messages = Counter(
            "herald_sender_messages",
            "Sends finished, by outcome (ok, retry_after, forbidden, bad_request, ...).",
            ["outcome"],
            registry=self.registry,
        )
        self.too_many_requests = Counter(
            "herald_sender_too_many_requests",
            "429 answers received; each halts the bot for its retry_after.",
            registry=self.registry,
        )
        self.bad_work = Counter(
            "herald_sender_bad_work_messages",
            "Work messages terminated because they cannot be used, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "herald_sender_in_flight",
            "Bot API requests open now.",
            registry=self.registry,
        )
        self.faults = Counter(
            "herald_sender_broadcast_faults",
            "Broadcasts this sender stopped, by reason (ContentRejected, BudgetExhausted...).",
            ["reason"],
            registry=self.registry,
        )
        self.bots = Gauge(
            "herald_sender_bots", "Bots whose lease this sender holds.", registry=self.registry
        )

    def serve(self, port: int) -> None:
        """Expose /metrics on `port` (0: do not)."""
        if port:
            start_http_server(port, registry=self.registry)
