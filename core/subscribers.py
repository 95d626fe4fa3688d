"""Subscribers as Herald stores them, and the CSV format they are imported from.

Parsing is pure and reports every problem with its line number, so an import is
all-or-nothing: a file either loads whole or is refused with the full list of what to fix.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass

from herald.core.contracts import LANGUAGE_CODE_PATTERN

__all__ = ["BOT_ID_FORM", "CSV_COLUMNS", "CsvError", "Subscriber", "is_bot_id", "parse_csv"]

CSV_COLUMNS = ("chat_id", "username", "first_name", "last_name", "language_code", "tags")
_REQUIRED = frozenset({"chat_id"})
# The same shape the Broadcast schema accepts in audience.subscribers.tags.
_TAG = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$")
_LANGUAGE = re.compile(LANGUAGE_CODE_PATTERN)
_INT64 = 2**63
_MAX_ERRORS = 50  # past this the file is wrong wholesale; more lines would not help
# Subscribers are kept per bot, by the id Telegram's getMe returns, stored as its decimal
# digits (the subscribers_bot_id_digits check of migration 0004): a positive int64.
_BOT_ID = re.compile(r"[1-9][0-9]{0,18}")
BOT_ID_FORM = "a bot id is the digits before the colon of the bot's token"


def is_bot_id(text: str) -> bool:
    """Whether ``text`` is a bot id as Herald stores it: digits, no sign, no leading zero."""
    return _BOT_ID.fullmatch(text) is not None and int(text) < _INT64


@dataclass(frozen=True)
class Subscriber:
    chat_id: int
    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    language_code: str | None = None
    tags: tuple[str, ...] = ()


class CsvError(ValueError):
    """The file cannot be imported; ``problems`` lists ``line N: what`` entries."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{len(problems)} problem(s), nothing imported:\n{shown}")


def _optional(value: str | None) -> str | None:
    stripped = (value or "").strip()
    return stripped or None


def _row(line: int, row: dict[str, str | None], problems: list[str]) -> Subscriber | None:
    raw_id = (row.get("chat_id") or "").strip()
    try:
        chat_id = int(raw_id)
    except ValueError:
        problems.append(f"line {line}: chat_id {raw_id!r} is not an integer")
        return None
    if chat_id == 0 or not -_INT64 <= chat_id < _INT64:
        problems.append(f"line {line}: chat_id {chat_id} is out of range")
        return None
    language = _optional(row.get("language_code"))
    if language is not None:
        language = language.lower()
        if not _LANGUAGE.match(language):
            problems.append(f"line {line}: language_code {language!r} is not a language code")
    tags = tuple(t for t in re.split(r"[;\s]+", (row.get("tags") or "").strip().lower()) if t)
    for tag in tags:
        if not _TAG.match(tag):
            problems.append(
                f"line {line}: tag {tag!r} must be lowercase letters, digits, '-', '_' or '.'"
            )
    username = _optional(row.get("username"))
    return Subscriber(
        chat_id=chat_id,
        username=username.removeprefix("@") if username else None,
        first_name=_optional(row.get("first_name")),
        last_name=_optional(row.get("last_name")),
        language_code=language,
        tags=tuple(dict.fromkeys(tags)),
    )


def parse_csv(text: str | Iterable[str]) -> list[Subscriber]:
    """Parse a subscriber CSV with a header row; raise :class:`CsvError` listing every problem.

    Columns: chat_id (required), username, first_name, last_name, language_code, tags
    (separated by ';' or spaces). Unknown columns are refused rather than silently dropped.
    """
    lines = io.StringIO(text) if isinstance(text, str) else text
    reader = csv.DictReader(lines, strict=True)
    problems: list[str] = []
    try:
        header = [h.strip() for h in (reader.fieldnames or [])]
    except csv.Error as exc:
        raise CsvError([f"line 1: {exc}"]) from exc
    if not header:
        raise CsvError(["line 1: the file is empty; it needs a header row"])
    reader.fieldnames = header
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if unknown:
        problems.append(
            f"line 1: unknown column(s) {', '.join(unknown)}; known: {', '.join(CSV_COLUMNS)}"
        )
    missing = sorted(_REQUIRED - set(header))
    if missing:
        raise CsvError([*problems, f"line 1: missing column(s) {', '.join(missing)}"])
    subscribers: list[Subscriber] = []
    seen: dict[int, int] = {}
    try:
        for row in reader:
            line = reader.line_num
            if None in row:
                problems.append(f"line {line}: more fields than columns")
                continue
            # Postgres text cannot hold NUL; refusing it here keeps the error on its line.
            if any("\x00" in (value or "") for value in row.values()):
                problems.append(f"line {line}: a field contains a NUL character")
                continue
            subscriber = _row(line, row, problems)
            if subscriber is not None:
                if subscriber.chat_id in seen:
                    problems.append(
                        f"line {line}: chat_id {subscriber.chat_id} already on line "
                        f"{seen[subscriber.chat_id]}"
                    )
                seen.setdefault(subscriber.chat_id, line)
                subscribers.append(subscriber)
            if len(problems) >= _MAX_ERRORS:
                problems.append("stopped after 50 problems")
                break
    except csv.Error as exc:
        problems.append(f"line {reader.line_num}: {exc}")
    if problems:
        raise CsvError(problems)
    return subscribers
