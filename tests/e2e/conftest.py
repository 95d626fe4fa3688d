"""The whole system for one test: real API server, NATS, Postgres, emulator, operator and
senders as separate processes, scoped to the test's namespace, database and JetStream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from herald.dev.controlplane import ControlPlane
from herald.dev.kubectl import Kubectl
from herald.dev.nats import NatsAccess
from herald.dev.systems import LocalSystem, local_system


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "herald_apis(n): run n herald-api processes too")


@pytest.fixture
async def herald(
    request: pytest.FixtureRequest,
    controlplane: ControlPlane,
    kubectl: Kubectl,
    database: str,
    nats_access: NatsAccess,
    tmp_path: Path,
) -> AsyncIterator[LocalSystem]:
    async with local_system(
        kubeconfig=controlplane.kubeconfig,
        kubectl=kubectl,
        database=database,
        nats=nats_access,
        logs=tmp_path / "logs",
        apis=marker.args[0] if (marker := request.node.get_closest_marker("herald_apis")) else 0,
    ) as system:
        yield system
