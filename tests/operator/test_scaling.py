"""Replicas follow the bots with active work, within the configured bounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import yaml
from kubernetes import config

from herald.dev.controlplane import ControlPlane
from herald.dev.kubectl import Kubectl
from herald.dev.supervising import sender_deployment
from herald.operator.scaling import (
    ScaleDownWindow,
    ScaleResult,
    desired_replicas,
    recent_traffic,
    scale_senders,
)
from herald.operator.settings import ScalingSettings


@pytest.mark.parametrize(
    ("bots", "minimum", "maximum", "expected"),
    [
        pytest.param([], 0, 10, 0, id="nothing-active-is-zero"),
        pytest.param(["1"], 0, 10, 1, id="one-bot-one-replica"),
        pytest.param(["1", "1", "1"], 0, 10, 1, id="one-bot-many-broadcasts-one-replica"),
        pytest.param(["1", "2", "3"], 0, 10, 3, id="a-replica-per-bot"),
        pytest.param(["1", "2", "3"], 0, 2, 2, id="capped-at-max"),
        pytest.param([], 1, 10, 1, id="floor-when-idle"),
    ],
)
def test_desired_replicas(bots: list[str], minimum: int, maximum: int, expected: int) -> None:
    assert desired_replicas(sending_bots=bots, minimum=minimum, maximum=maximum) == expected


def test_bots_with_recent_traffic_count_as_sending_bots() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    traffic = {
        "1": now - timedelta(seconds=10),
        "2": now - timedelta(seconds=301),
        "3": now + timedelta(seconds=2),  # herald-api's clock a little ahead
    }
    recent = recent_traffic(traffic, now=now, window=300)
    assert recent == {"1", "3"}
    # A bot both broadcasting and messaging needs one replica, not two.
    assert desired_replicas(sending_bots=["1", *recent], minimum=0, maximum=10) == 2
    assert recent_traffic({}, now=now, window=300) == set()


def test_scale_down_waits_for_the_window_and_up_does_not() -> None:
    window = ScaleDownWindow(seconds=60)
    assert window.replicas(3, floor=0, now=0) == 3
    assert window.replicas(2, floor=0, now=10) == 3  # one bot done: its replica stays
    assert window.replicas(4, floor=0, now=20) == 4  # up at once
    assert window.replicas(2, floor=0, now=79) == 4
    assert window.replicas(2, floor=0, now=80) == 2  # fewer wanted for a whole minute
    assert window.replicas(0, floor=0, now=81) == 0  # nothing sends: no lease to hand off
    assert window.replicas(1, floor=0, now=82) == 1  # and the idle past is forgotten


def test_scale_down_at_once_with_no_window() -> None:
    window = ScaleDownWindow(seconds=0)
    assert [window.replicas(n, floor=1, now=t) for t, n in enumerate([3, 2, 1, 2])] == [3, 2, 1, 2]


def test_bounds_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERALD_SCALING_MIN_REPLICAS", "3")
    monkeypatch.setenv("HERALD_SCALING_MAX_REPLICAS", "2")
    with pytest.raises(ValueError, match="must not exceed"):
        ScalingSettings()


async def test_scaling_patches_only_when_the_count_differs(
    controlplane: ControlPlane, kubectl: Kubectl
) -> None:
    namespace = kubectl.namespace
    assert namespace is not None
    deployment = sender_deployment("herald-sender", namespace)
    deployment["spec"]["replicas"] = 0  # stored, then served without the field
    kubectl("apply", "-f", "-", input=yaml.safe_dump(deployment))
    api = config.new_client_from_config(str(controlplane.kubeconfig))  # type: ignore[no-untyped-call]
    try:

        async def scale(replicas: int, *, only_up: bool = False) -> str:
            return await scale_senders(
                api,
                namespace=namespace,
                deployment="herald-sender",
                replicas=replicas,
                only_up=only_up,
            )

        assert await scale(0) == ScaleResult.UNCHANGED
        assert await scale(2) == ScaleResult.SCALED
        assert await scale(2) == ScaleResult.UNCHANGED
        # Just after an operator restart: more is applied, fewer waits for the count.
        assert await scale(1, only_up=True) == ScaleResult.UNCHANGED
        assert await scale(3, only_up=True) == ScaleResult.SCALED
        assert await scale(0) == ScaleResult.SCALED
        assert await scale(0) == ScaleResult.UNCHANGED
        missing = await scale_senders(api, namespace=namespace, deployment="absent", replicas=1)
        assert missing == ScaleResult.MISSING
    finally:
        api.close()
