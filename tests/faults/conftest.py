"""A whole Herald per test, with the sender timings of faults.checks.SETTINGS; a test
changes them with ``@pytest.mark.herald_settings(HERALD_...="...")``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from faults import checks
from herald.dev.controlplane import ControlPlane
from herald.dev.kubectl import Kubectl
from herald.dev.nats import NatsAccess
from herald.dev.systems import LocalSystem


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "herald_settings(**variables): environment of the test's Herald processes"
    )


@pytest.fixture
async def herald(
    request: pytest.FixtureRequest,
    controlplane: ControlPlane,
    kubectl: Kubectl,
    database: str,
    nats_access: NatsAccess,
    tmp_path: Path,
) -> AsyncIterator[LocalSystem]:
    marker = request.node.get_closest_marker("herald_settings")
    async with checks.system(
        controlplane,
        kubectl,
        database=database,
        nats_access=nats_access,
        logs=tmp_path / "logs",
        settings=marker.kwargs if marker is not None else None,
    ) as system:
        yield system
