"""The chart, rendered by the pinned helm."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from herald.dev import tools
from herald.dev.kubectl import repo_root

CHART = repo_root() / "charts" / "herald"


def render_chart(*args: str, namespace: str = "herald", release: str = "herald") -> str:
    """`helm template` of the chart; ``args`` are helm flags such as ``--set=bot.enabled=true``."""
    result = tools.helm("template", release, str(CHART), f"--namespace={namespace}", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def chart() -> Path:
    return CHART


@pytest.fixture
def render_text() -> Callable[..., str]:
    """Render the chart and return helm's output."""
    return render_chart


@pytest.fixture
def render() -> Callable[..., list[Any]]:
    """Render the chart and return its objects."""

    def objects(*args: str, namespace: str = "herald", release: str = "herald") -> list[Any]:
        text = render_chart(*args, namespace=namespace, release=release)
        return [document for document in yaml.safe_load_all(text) if document]

    return objects
