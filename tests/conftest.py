"""Session-wide real services: one control plane, one NATS, one Postgres per test session;
each test gets its own namespace and database so tests never see each other's state."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import nats
import pytest

from herald.core import loops
from herald.core.migrating import apply_migrations
from herald.dev import controlplane as controlplanes
from herald.dev import keys
from herald.dev.kubectl import Kubectl
from herald.dev.nats import NatsAccess, NatsServer
from herald.dev.postgres import PostgresCluster
from herald.emulator import RunningEmulator, run_emulator

# One token key ring for the session: components started in this process read it from the
# environment, and those started as processes inherit it.
os.environ.setdefault("HERALD_TOKEN_KEYS", keys.token_keys())


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, loops.LoopFactory]:
    """The tests run on the event loop the components run on (herald.core.loops)."""
    return {"uvloop": loops.new_loop}


@pytest.fixture(scope="session")
def controlplane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[controlplanes.ControlPlane]:
    """A real etcd + kube-apiserver with the Herald CRDs installed and Established."""
    with controlplanes.running(tmp_path_factory.mktemp("controlplane")) as plane:
        Kubectl(plane.kubeconfig).install_crds()
        yield plane


@pytest.fixture
def kubectl(controlplane: controlplanes.ControlPlane) -> Iterator[Kubectl]:
    """kubectl bound to a fresh namespace. No controller-manager runs to finalise namespace
    deletion, so the namespace is only marked for deletion afterwards; names never repeat."""
    namespace = f"t-{uuid.uuid4().hex[:10]}"
    admin = Kubectl(controlplane.kubeconfig)
    admin("create", "namespace", namespace)
    yield admin.in_namespace(namespace)
    admin("delete", "namespace", namespace, "--wait=false", check=False)


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """nats-server with a user per component, each with only its permissions (docs/nats.md),
    and an admin user, whose URL (credentials embedded) is ``nats_server.url``."""
    with NatsServer(tmp_path_factory.mktemp("nats")) as server:
        yield server


async def _wipe_jetstream(url: str) -> None:
    client = await nats.connect(url)
    try:
        js = client.jetstream()
        for info in await js.streams_info():
            if info.config.name is not None:
                await js.delete_stream(info.config.name)
    finally:
        await client.close()


@pytest.fixture
async def nats_url(nats_server: NatsServer) -> AsyncIterator[str]:
    """The session's NATS, as its admin, with no streams or KV buckets (KV buckets are
    streams) left over: Herald's stream and bucket names are fixed, so each test starts from
    an empty JetStream. A component that the test ran under its own user and that was refused
    a subject fails the test: its permissions in herald.core.permissions are short."""
    await _wipe_jetstream(nats_server.url)
    seen = nats_server.log_size()
    yield nats_server.url
    await _wipe_jetstream(nats_server.url)
    refused = nats_server.violations(since=seen)
    assert not refused, "NATS refused a component:\n" + "\n".join(refused)


@pytest.fixture
def nats_access(nats_url: str, nats_server: NatsServer) -> NatsAccess:
    """``nats_url``'s server with every user's credentials: components run with their own."""
    return nats_server.access


@pytest.fixture
async def emulator() -> AsyncIterator[RunningEmulator]:
    """A fresh Telegram Bot API emulator with Telegram's default limits."""
    async with run_emulator() as running:
        yield running


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresCluster]:
    with PostgresCluster(tmp_path_factory.mktemp("postgres")) as cluster:
        yield cluster


@pytest.fixture
async def database(postgres: PostgresCluster) -> AsyncIterator[str]:
    """A fresh, migrated database; yields its DSN."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres.dsn())
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        connection = await asyncpg.connect(postgres.dsn(name))
        try:
            await apply_migrations(connection)
        finally:
            await connection.close()
        yield postgres.dsn(name)
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
def repo() -> Path:
    return Path(__file__).resolve().parent.parent
