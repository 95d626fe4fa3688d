"""The harness's three-node JetStream cluster: Herald's streams at R3, a node killed and
started again on its store, a node partitioned away (no route left, as /routez says) and
healed, and JetStream answering through the majority meanwhile."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import nats
import pytest

from herald.core import subjects
from herald.dev.nats import ADMIN, NatsCluster, NatsServer


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    with NatsCluster(tmp_path / "nats") as running:
        yield running
    refused = running.violations()
    assert not refused, "NATS refused a client:\n" + "\n".join(refused)


async def _publish(nodes: list[NatsServer], body: bytes) -> int:
    """One work message through whichever of ``nodes`` the client picks; its sequence."""
    client = await nats.connect(servers=[node.url_for(ADMIN) for node in nodes])
    try:
        ack = await client.jetstream().publish(subjects.work_subject("x"), body)
        return ack.seq
    finally:
        await client.close()


async def test_streams_at_r3_survive_a_killed_and_a_partitioned_node(
    cluster: NatsCluster,
) -> None:
    access = cluster.access
    assert access.replicas == 3
    assert access.env(ADMIN)["HERALD_NATS_REPLICAS"] == "3"
    assert access.address.count(",") == 2
    await access.create_streams()
    client = await nats.connect(servers=access.urls_for(ADMIN))
    try:
        js = client.jetstream()
        for stream in (subjects.WORK_STREAM, f"KV_{subjects.CONTROL_BUCKET}"):
            info = await js.stream_info(stream)
            assert info.config.num_replicas == 3, stream
    finally:
        await client.close()
    assert await _publish(cluster.nodes, b"before") == 1

    leader = await cluster.leader(subjects.WORK_STREAM)
    cluster.kill(leader)
    assert not leader.alive
    successor = await cluster.leader(subjects.WORK_STREAM)
    assert successor is not leader
    assert await _publish([n for n in cluster.nodes if n.alive], b"while one is dead") == 2
    cluster.restart(leader)
    assert leader.routes() == {node.name for node in cluster.nodes if node is not leader}

    cut = await cluster.leader(subjects.WORK_STREAM)
    cluster.partition(cut)
    assert cut.routes() == set()
    majority = [node for node in cluster.nodes if node is not cut]
    assert all(
        node.routes() == {other.name for other in majority} - {node.name} for node in majority
    )
    assert (await cluster.leader(subjects.WORK_STREAM)) in majority
    assert await _publish(majority, b"while one is cut off") == 3
    cluster.heal(cut)
    assert cut.routes() == {node.name for node in majority}
    assert await _publish(cluster.nodes, b"after") == 4
