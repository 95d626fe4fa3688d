"""Prometheus metrics of the admin bot, and the middlewares that count updates and admin
commands.

Every label takes its value from a fixed set: ``kind`` is Telegram's update type, ``command``
one of the admin commands (anything else an admin or a stranger types is ``other``), so a
user typing ``/whatever`` cannot mint a series. No label names a user, a chat or a Broadcast.

Series, all prefixed ``herald_bot_``:

- ``updates_total{kind}``: updates received (message, callback_query, my_chat_member, ...).
- ``admin_commands_total{command, result}``: admin actions, by command (a button counts as the
  command it stands for) and result: ``ok``, ``error`` (the handler raised) or ``refused``
  (not on the allowlist).
- ``refusals_total{kind}``: admin actions refused, by update kind.
- ``reports_total{result}``: completion reports to admins: ``sent``, ``retried`` (Telegram
  was unavailable; the record is redelivered) or ``failed`` (the admin cannot be messaged).
- ``subscriber_changes_total{change}``: ``subscribed``, ``blocked``, ``unblocked``.
- ``clicks_total{result}``: presses of callback buttons, ``counted``, ``repeated``, ``gone``.
- ``webhook_refusals_total{reason}``: webhook calls refused: ``no_secret`` or
  ``wrong_secret`` (no or another X-Telegram-Bot-Api-Secret-Token than the bot's: someone
  other than Telegram, or a secret rotated on one side only), ``unknown_path`` (no bot there).
- ``bots{mode}``: bots served, by how their updates come: ``polling``, ``webhook``.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import CallbackQuery, Message, TelegramObject, Update
from aiogram.types.update import UpdateTypeLookupError
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

__all__ = [
    "ADMIN_COMMANDS",
    "CountAdminCommands",
    "CountUpdates",
    "Metrics",
    "WebhookRefusal",
    "command_of",
]

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]

ADMIN_COMMANDS = frozenset({"broadcasts", "status", "pause", "resume", "cancel", "help"})
# Buttons under status messages (callbacks.BroadcastAction) as the command each stands for.
_BUTTONS = {
    "p": "pause",
    "r": "resume",
    "f": "status",
    "c": "cancel",
    "y": "cancel",
    "n": "cancel",
}
_OTHER = "other"
_CREATE = "create"


class CommandResult(enum.StrEnum):
    OK = "ok"
    ERROR = "error"
    REFUSED = "refused"


class WebhookRefusal(enum.StrEnum):
    NO_SECRET = "no_secret"  # noqa: S105 - reasons, not secrets
    WRONG_SECRET = "wrong_secret"  # noqa: S105
    UNKNOWN_PATH = "unknown_path"


class Metrics:
    """The bot's instruments, in their own registry (tests run bots side by side)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.updates = Counter(
            "herald_bot_updates", "Updates received, by kind.", ["kind"], registry=r
        )
        self.admin_commands = Counter(
            "herald_bot_admin_commands",
            "Admin actions by command and result (ok, error, refused).",
            ["command", "result"],
            registry=r,
        )
        self.refusals = Counter(
            "herald_bot_refusals",
            "Admin actions refused to users not on the allowlist, by update kind.",
            ["kind"],
            registry=r,
        )
        self.reports = Counter(
            "herald_bot_reports",
            "Completion reports to admins, by result (sent, retried, failed).",
            ["result"],
            registry=r,
        )
        self.subscriber_changes = Counter(
            "herald_bot_subscriber_changes",
            "Subscribers who started, blocked or unblocked the bot.",
            ["change"],
            registry=r,
        )
        self.clicks = Counter(
            "herald_bot_clicks",
            "Presses of broadcasts' callback buttons, by result (counted: the chat's first "
            "press of that button; repeated; gone: the Broadcast or its button no longer is).",
            ["result"],
            registry=r,
        )
        self.webhook_refusals = Counter(
            "herald_bot_webhook_refusals",
            "Webhook calls refused, by reason (no_secret, wrong_secret, unknown_path).",
            ["reason"],
            registry=r,
        )
        self.bots = Gauge(
            "herald_bot_bots",
            "Bots served, by how their updates come (polling, webhook).",
            ["mode"],
            registry=r,
        )
        for reason in WebhookRefusal:
            self.webhook_refusals.labels(reason.value)
        for mode in ("polling", "webhook"):
            self.bots.labels(mode)
        for result in ("sent", "retried", "failed"):
            self.reports.labels(result)
        for change in ("subscribed", "blocked", "unblocked"):
            self.subscriber_changes.labels(change)
        for click in ("counted", "repeated", "gone"):
            self.clicks.labels(click)

    def command(self, event: TelegramObject, result: CommandResult) -> None:
        self.admin_commands.labels(command_of(event), result.value).inc()

    def refused(self, event: TelegramObject) -> None:
        self.refusals.labels(kind_of(event)).inc()
        self.command(event, CommandResult.REFUSED)

    def serve(self, port: int) -> None:
        """Expose /metrics on ``port`` (0: do not)."""
        if port:
            start_http_server(port, registry=self.registry)


def command_of(event: TelegramObject) -> str:
    """The admin command an event asks for, from a fixed set."""
    if isinstance(event, Message):
        text = event.text or ""
        if text.startswith("/"):
            word = text[1:].split(maxsplit=1)[0] if len(text) > 1 else ""
            word = word.partition("@")[0].lower()
            return word if word in ADMIN_COMMANDS else _OTHER
        return _CREATE if event.forward_origin is not None else _OTHER
    if isinstance(event, CallbackQuery):
        data = event.data or ""
        if data.startswith("b:"):
            return _BUTTONS.get(data[2:3], _OTHER)
        if data.startswith("n:"):
            return _CREATE
    return _OTHER


def kind_of(event: TelegramObject) -> str:
    if isinstance(event, Message):
        return "message"
    if isinstance(event, CallbackQuery):
        return "callback_query"
    return _OTHER


class CountUpdates(BaseMiddleware):
    """Outer middleware of ``dispatcher.update``: every update, by kind."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        kind = _OTHER
        if isinstance(event, Update):
            try:
                kind = event.event_type
            except UpdateTypeLookupError:
                kind = "unknown"
        self._metrics.updates.labels(kind).inc()
        return await handler(event, data)


class CountAdminCommands(BaseMiddleware):
    """Inner middleware of the admin routers, inside the allowlist check: admitted actions
    by command and whether their handler finished."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        try:
            result = await handler(event, data)
        except Exception:
            self._metrics.command(event, CommandResult.ERROR)
            raise
        self._metrics.command(event, CommandResult.OK)
        return result
