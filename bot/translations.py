"""The bot's texts in the user's language, through Project Fluent.

Fluent is chosen over gettext because its messages carry their own plural and select rules
per language (Russian has three plural forms) and need no compile step: the ``.ftl`` files
under ``locales/`` are read as they are. A language without its own file, or a message
missing from it, falls back to English.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

from fluent.runtime import AbstractResourceLoader, FluentLocalization
from fluent.syntax import FluentParser
from fluent.syntax.ast import Resource

__all__ = ["FALLBACK", "LOCALES_DIR", "Texts", "Translations"]

LOCALES_DIR = Path(__file__).resolve().parent / "locales"
FALLBACK = "en"
_RESOURCES = ["bot.ftl"]


class _Loader(AbstractResourceLoader):
    """Reads ``<directory>/<locale>/<resource>`` and closes the file (fluent.runtime's own
    loader leaves it to the garbage collector, which warns)."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def resources(
        self, locale: str, resource_ids: list[str]
    ) -> Generator[list[Resource], None, None]:
        paths = [self._directory / locale / resource_id for resource_id in resource_ids]
        found = [FluentParser().parse(p.read_text(encoding="utf-8")) for p in paths if p.is_file()]
        if found:
            yield found


class Texts:
    """The texts of one language: ``texts("paused", name="x")``."""

    def __init__(self, locale: str, localization: FluentLocalization) -> None:
        self.locale = locale
        self._localization = localization

    def __call__(self, key: str, /, **args: Any) -> str:
        # Plain strings for ids and names: Fluent would group the digits of a number.
        return self._localization.format_value(key, args)


class Translations:
    """Every language the bot speaks, loaded once; picks one by a Telegram language_code."""

    def __init__(self, directory: Path = LOCALES_DIR) -> None:
        self._directory = directory

    @cached_property
    def locales(self) -> tuple[str, ...]:
        found = sorted(p.name for p in self._directory.iterdir() if (p / _RESOURCES[0]).is_file())
        if FALLBACK not in found:
            raise FileNotFoundError(f"no {FALLBACK} texts in {self._directory}")
        return tuple(found)

    @cached_property
    def _texts(self) -> Mapping[str, Texts]:
        loader = _Loader(self._directory)
        return {
            locale: Texts(
                locale,
                FluentLocalization(list(dict.fromkeys([locale, FALLBACK])), _RESOURCES, loader),
            )
            for locale in self.locales
        }

    def for_language(self, language_code: str | None, *, default: str | None = None) -> Texts:
        """Texts for ``ru``, ``ru-RU`` or ``pt-br`` (exact tag, then its primary language);
        when the bot does not speak that language, or it is not given, those of ``default``
        (a Bot's defaultLanguage), and English when there is none of either."""
        for candidate in (*_candidates(language_code), *_candidates(default)):
            if candidate in self._texts:
                return self._texts[candidate]
        return self._texts[FALLBACK]


def _candidates(language_code: str | None) -> Iterable[str]:
    if not language_code:
        return ()
    code = language_code.lower().replace("_", "-")
    return (code, code.split("-", 1)[0])
