"""Logging of every Herald process: readable lines for a terminal, JSON lines for a log
pipeline, and the same redaction in front of both.

:func:`configure` is called once by each component's entry point. It owns the root logger's
one handler, so the libraries' records (kopf, aiogram, nats) come out in the same shape as
Herald's own. A JSON line carries ``time``, ``level``, ``logger`` and ``message``, then the
broadcast's ``namespace`` and ``name`` when the record is about one, then any ``extra=``
fields, and ``exc_info`` for a traceback.

Which broadcast a record is about comes from, in order: ``extra={"namespace": ...,
"broadcast": ...}`` on the call (a record's ``name`` is its logger's), kopf's object
reference on its per-object records, or the context set by :func:`broadcast` (a context
variable, so it follows asyncio tasks created inside the block).

No bot token, URL password or libpq ``password=`` ever leaves a handler: :class:`Redact`
rewrites the message, its arguments, the traceback and string ``extra`` fields. Message
bodies cannot be recognised by a pattern, so they are kept out by construction instead:
Herald's code never logs them, and :func:`configure` raises the level of the library
loggers that would (aiogram's update and scene logs, kopf's debug dumps of patches, which
carry the Broadcast's content).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
import sys
import time
from collections.abc import Iterator, Mapping
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from herald.core.settings import LogFormat, LogSettings

__all__ = ["Redact", "broadcast", "configure", "json_formatter", "redact", "text_formatter"]

# A bot token is "<bot id>:<secret>"; the bot id stays readable, it is no secret.
_TOKEN = re.compile(r"(\d+):[A-Za-z0-9_-]{30,}")
# scheme://user:password@ in any URL (postgresql://, nats://, https://).
_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)[^@\s/]+@")
# libpq's key=value form: "host=db password=secret".
_KEYWORD_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('[^']*'|\S+)", re.IGNORECASE)
_MASK = "***"

# Library loggers whose lower levels print message bodies or Broadcast specs.
_FLOORS: Mapping[str, int] = {
    "aiogram.event": logging.WARNING,  # every update, with its content, at INFO
    "aiogram.scene": logging.INFO,  # FSM data at DEBUG
    "aiogram.middlewares": logging.WARNING,  # request logging middleware
    "kopf": logging.INFO,  # patches (the diff-base holds the whole spec) at DEBUG
}

# LogRecord's own attributes, and kopf's, which are not ``extra`` fields of the call.
_RECORD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "k8s_ref",
    "k8s_skip",
    "settings",
}

# ``extra`` keys naming the broadcast; "name" itself is taken by LogRecord (the logger's).
_SUBJECT_KEYS = frozenset({"namespace", "broadcast"})

_broadcast: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "herald_broadcast", default=None
)


def redact(text: str) -> str:
    """``text`` with bot tokens and passwords masked."""
    text = _TOKEN.sub(rf"\1:{_MASK}", text)
    text = _URL_PASSWORD.sub(rf"\1{_MASK}@", text)
    return _KEYWORD_PASSWORD.sub(rf"\1{_MASK}", text)


@contextlib.contextmanager
def broadcast(namespace: str, name: str) -> Iterator[None]:
    """Records logged inside the block (and in tasks created inside it) name this broadcast."""
    token = _broadcast.set((namespace, name))
    try:
        yield
    finally:
        _broadcast.reset(token)


class Redact(logging.Filter):
    """Masks secrets in a record before any formatter sees it.

    The message is rendered with its arguments first, so a secret passed as ``%s`` is
    caught too; the traceback is rendered and masked the same way.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        rendered = record.getMessage()
        record.msg = redact(rendered)
        record.args = None
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in list(record.__dict__.items()):
            if key not in _RECORD_ATTRIBUTES and isinstance(value, str):
                setattr(record, key, redact(value))
        return True


def _subject(record: logging.LogRecord) -> tuple[str, str] | None:
    """The broadcast (namespace, name) a record is about, if any."""
    namespace, name = record.__dict__.get("namespace"), record.__dict__.get("broadcast")
    if isinstance(namespace, str) and isinstance(name, str):
        return namespace, name
    ref = record.__dict__.get("k8s_ref")
    if isinstance(ref, Mapping) and ref.get("name"):
        return str(ref.get("namespace") or ""), str(ref["name"])
    return _broadcast.get()


class _Json(JsonFormatter):
    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        log_data["time"] = _utc(record.created)
        log_data["level"] = record.levelname
        log_data["logger"] = record.name
        log_data["message"] = record.message
        subject = _subject(record)
        if subject is not None:
            log_data["namespace"], log_data["name"] = subject
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES and key not in _SUBJECT_KEYS:
                log_data.setdefault(key, value)
        log_data.update(message_dict)


class _Text(logging.Formatter):
    """``time level logger: [namespace/name] message``."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        subject = _subject(record)
        prefix = ""
        if subject is not None:
            namespace, name = subject
            prefix = f"[{namespace}/{name}] " if namespace else f"[{name}] "
        return f"{record.asctime} {record.levelname} {record.name}: {prefix}{record.message}"


def _utc(created: float) -> str:
    whole = time.gmtime(created)
    millis = int((created % 1) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", whole) + f".{millis:03d}Z"


def json_formatter() -> logging.Formatter:
    return _Json()


def text_formatter() -> logging.Formatter:
    formatter = _Text("%(asctime)s %(levelname)s %(name)s: %(message)s")
    formatter.converter = time.gmtime
    formatter.default_msec_format = "%s.%03dZ"
    return formatter


def configure(
    settings: LogSettings | None = None, *, floors: Mapping[str, int] | None = None
) -> None:
    """Send every record to stderr in the configured format, secrets masked.

    ``floors`` raises the least level of more loggers (a component's noisy libraries); it
    is applied after Herald's own, so it can only add to them.
    """
    settings = settings if settings is not None else LogSettings()
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(Redact())
    handler.setFormatter(
        json_formatter() if settings.format is LogFormat.JSON else text_formatter()
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    level = logging.getLevelName(settings.level.upper())
    root.setLevel(level)
    for name, floor in {**_FLOORS, **(floors or {})}.items():
        library = logging.getLogger(name)
        library.setLevel(max(floor, level))
