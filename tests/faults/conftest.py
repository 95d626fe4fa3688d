"""A whole Herald per test, with the sender timings of faults.checks.SETTINGS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from faults import checks
from herald.dev.controlplane import ControlPlane
from herald.dev.kubectl import Kubectl
from herald.dev.systems import LocalSystem


@pytest.fixture
async def herald(
    controlplane: ControlPlane,
    kubectl: Kubectl,
    database: str,
    nats_url: str,
    tmp_path: Path,
) -> AsyncIterator[LocalSystem]:
    async with checks.system(
        controlplane, kubectl, database=database, nats_url=nats_url, logs=tmp_path / "logs"
    ) as system:
        yield system
