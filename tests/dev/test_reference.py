"""The generated reference pages are committed; they must say what their sources say."""

from __future__ import annotations

from herald.dev import reference
from herald.dev.kubectl import repo_root


def test_committed_reference_pages_match_their_sources() -> None:
    for path, expected in reference.render_pages(repo_root()).items():
        assert path.read_text() == expected, f"{path} is stale: run `herald dev docs`"


def test_the_api_page_teaches_every_spec_field_and_rule() -> None:
    page = reference.api_reference()
    for field in ("spec.rate.messagesPerSecond", "spec.schedule.deadline", "status.conditions"):
        assert f"`{field}`" in page
    assert "exactly one" in page.lower()


def test_the_configuration_page_lists_secrets_without_their_defaults() -> None:
    page = reference.configuration_reference()
    assert "| `HERALD_DATABASE_URL` | (secret) |" in page
    assert "| `HERALD_BOT_TOKEN` | `null` | Deprecated" in page
    assert "postgresql://" not in page
