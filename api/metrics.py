"""Prometheus metrics of a herald-api process, in a registry of its own (tests run several
processes' worth in one), served at ``/metrics`` on the API's port.

Series, all prefixed ``herald_api_``:

- ``requests_total{route, method, code}``: HTTP answers, by route template (never the path
  with its namespace, bot or id filled in) and status code; ``route`` is ``unmatched`` for a
  path no route takes.
- ``message_latency_seconds``: from a message's acceptance to Telegram's, observed once per
  message (by one replica) as its outcome is announced.
- ``open_messages{namespace, bot}``: messages pending or being sent, per bot, read from the
  table every few seconds; every replica reports the same values, so aggregate with ``max``.
- ``published_total{result}``: publishes of messages to the stream, ``ok`` or ``failed``
  (the row stays pending); ``republished`` counts, besides, the rows the periodic round
  queued again.
- ``callbacks_total{result}``: callback attempts (``done``, ``retry``, ``failed``: the last).
- ``expired_messages_total``: finished messages deleted with their idempotency keys.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from herald.api import postgres

__all__ = ["CountRequests", "Metrics"]

# From a few tens of milliseconds (an idle bot) to minutes (a queue behind a bot's limit).
_LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10, 30, 60, 120, 300, 600)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "herald_api_requests",
            "HTTP answers, by route template, method and status code.",
            ["route", "method", "code"],
            registry=r,
        )
        self.latency = Histogram(
            "herald_api_message_latency_seconds",
            "Seconds from a message's acceptance to Telegram's acceptance of it.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.open_messages = Gauge(
            "herald_api_open_messages",
            "Messages pending or being sent, per bot (the same on every replica: use max).",
            ["namespace", "bot"],
            registry=r,
        )
        self.published = Counter(
            "herald_api_published",
            "Publishes of messages to the stream, by result.",
            ["result"],
            registry=r,
        )
        self.callbacks = Counter(
            "herald_api_callbacks",
            "Outcome callback attempts, by result (failed: the last attempt failed).",
            ["result"],
            registry=r,
        )
        self.expired = Counter(
            "herald_api_expired_messages",
            "Finished messages deleted with their idempotency keys.",
            registry=r,
        )

    def show_open(self, counts: list[postgres.OpenCount]) -> None:
        # Set anew each time, so a bot whose queue emptied leaves the series.
        self.open_messages.clear()
        for count in counts:
            self.open_messages.labels(count.namespace, count.bot).set(count.open)


class CountRequests:
    """ASGI middleware counting every HTTP answer by the template of the route that took it."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # unless the app answers: it failed before it could

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.metrics.requests.labels(_route(scope), scope["method"], str(status)).inc()


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None) if isinstance(route, BaseRoute) else None
    return path if isinstance(path, str) else "unmatched"
