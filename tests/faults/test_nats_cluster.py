"""A three-node JetStream cluster losing a node in the middle of a 5,000-recipient paid
broadcast: the node leading the work stream killed (SIGKILL) and started again later, then
(another test) such a node partitioned away from the other two and healed later. Herald's
streams and control bucket are at R3 (the operator is given HERALD_NATS_REPLICAS=3) and every
component has all three URLs. Each test runs its own cluster: killing a node of the session's
server would break every other test.

In both, the node that goes is made the leader of ``HERALD_WORK`` and of the control bucket
and is the one the sender is connected to: the worst node to lose. The sender's connection
drops or leads nowhere, its lease cannot be renewed, and both streams elect a new leader
among the two that remain. Nothing that sends dies, so no recipient may end uncertain."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from faults import checks
from herald.core import subjects
from herald.dev.controlplane import ControlPlane
from herald.dev.kubectl import Kubectl
from herald.dev.nats import NatsCluster, NatsServer
from herald.dev.systems import LocalSystem

AUDIENCE = 5_000
BATCHES = 50
CONTROL_STREAM = f"KV_{subjects.CONTROL_BUCKET}"
# Longer than a JetStream election can take (9 s at most), than the sender's lease (2 s),
# than a claim's TTL and the work consumer's ack wait (3 s): the other two nodes have new
# leaders, the held work is due for redelivery and the lease has lapsed before the heal.
PARTITION_SECONDS = 10.0


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    with NatsCluster(tmp_path / "nats") as running:
        yield running
    refused = running.violations()
    assert not refused, "NATS refused a component:\n" + "\n".join(refused)


async def _start(herald: LocalSystem, name: str) -> None:
    await checks.seed(herald, AUDIENCE)
    checks.apply_paid(herald, name, paused=True)
    uid = await checks.wait_published(herald, name, BATCHES)
    await checks.shorten_ack_wait(herald, uid)
    herald.kubectl("patch", "bc", name, "--type=merge", "-p", '{"spec":{"paused":false}}')


async def _worst_node(cluster: NatsCluster) -> NatsServer:
    """The sender's node, made the leader of the work stream and of the control bucket."""
    serving = cluster.serving("herald-sender")
    assert len(serving) == 1, f"the sender is on {[node.name for node in serving]}"
    node = serving[0]
    for stream in (subjects.WORK_STREAM, CONTROL_STREAM):
        await cluster.move_leader(stream, node)
    return node


async def test_work_stream_leader_killed_mid_broadcast(
    controlplane: ControlPlane,
    kubectl: Kubectl,
    database: str,
    cluster: NatsCluster,
    tmp_path: Path,
) -> None:
    async with checks.system(
        controlplane,
        kubectl,
        database=database,
        nats_access=cluster.access,
        logs=tmp_path / "logs",
    ) as herald:
        await _start(herald, "leader-killed")
        await checks.wait_delivered(herald, 1_500)
        leader = await _worst_node(cluster)
        cluster.kill(leader)
        # R3: the two nodes left carry the broadcast on, without the dead one.
        await checks.wait_delivered(herald, await checks.sent(herald) + 1_000)
        assert not leader.alive
        assert (await cluster.leader(subjects.WORK_STREAM)) is not leader
        await asyncio.to_thread(cluster.restart, leader)
        checked = await checks.verify(herald, "leader-killed")
    assert checked.ledger["delivered"] == AUDIENCE


async def test_node_partitioned_mid_broadcast(
    controlplane: ControlPlane,
    kubectl: Kubectl,
    database: str,
    cluster: NatsCluster,
    tmp_path: Path,
) -> None:
    async with checks.system(
        controlplane,
        kubectl,
        database=database,
        nats_access=cluster.access,
        logs=tmp_path / "logs",
    ) as herald:
        await _start(herald, "partitioned")
        await checks.wait_delivered(herald, 1_500)
        cut = await _worst_node(cluster)
        await asyncio.to_thread(cluster.partition, cut)
        await asyncio.sleep(PARTITION_SECONDS)
        # The sender stays connected to the node cut off: no route either way.
        assert cut.routes() == set()
        assert cluster.serving("herald-sender") == [cut]
        await asyncio.to_thread(cluster.heal, cut)
        checked = await checks.verify(herald, "partitioned")
    assert checked.ledger["delivered"] == AUDIENCE
