"""The operator's connections to Postgres, NATS and the API server, opened once, and the
bounded waits every step uses on them (:mod:`herald.operator.waiting`). Herald's own objects
on the API server go through :mod:`herald.kube`, as the field manager :data:`FIELD_MANAGER`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import asyncpg
from kubernetes import client
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from herald.core import migrating, natsconn, pgconn, streams
from herald.core.permissions import Component
from herald.kube import connecting
from herald.kube.broadcasts import Broadcasts
from herald.kube.secrets import Secrets
from herald.operator.settings import Settings
from herald.operator.waiting import Service, Timeouts, waiting_for

__all__ = ["FIELD_MANAGER", "Connections", "connect"]

_T = TypeVar("_T")

# One stable name, so `kubectl get -o yaml --show-managed-fields` says who set a field and
# an HPA or Argo CD can be told to leave this manager's fields alone.
FIELD_MANAGER = "herald-operator"

# The kubernetes client blocks, so its calls run in the loop's default executor: asyncio's
# default of cores + 4 threads queued a pause's status write behind a burst of other writes
# (bench/many_broadcasts.py). Every call is bounded anyway.
_KUBERNETES_THREADS = 16


@dataclass(frozen=True)
class Connections:
    """Everything a reconcile talks to, with its time-outs."""

    api: client.ApiClient
    broadcasts: Broadcasts  # blocking calls: run them through kubernetes()
    secrets: Secrets
    pool: asyncpg.Pool  # reconciles: counts, status, small writes
    # Materialising and queueing audiences: a pool of its own, so any number of them at once
    # can never take the connections that status refreshes and pauses need.
    preparing_pool: asyncpg.Pool
    nc: NatsClient
    js: JetStreamContext
    kv: KeyValue
    timeouts: Timeouts

    def database(self, what: str) -> contextlib.AbstractAsyncContextManager[None]:
        return waiting_for(Service.DATABASE, self.timeouts.database, what)

    def nats(self, what: str) -> contextlib.AbstractAsyncContextManager[None]:
        return waiting_for(Service.NATS, self.timeouts.nats, what)

    async def kubernetes(self, what: str, call: Callable[[], _T]) -> _T:
        """Run a blocking client call off the loop. The call carries the same time-out
        itself (``_request_timeout``), so its thread ends when the wait does."""
        async with waiting_for(Service.KUBERNETES, self.timeouts.kubernetes, what):
            return await asyncio.to_thread(call)

    async def close(self) -> None:
        await self.nc.drain()
        for pool in (self.pool, self.preparing_pool):
            await pool.close()
        self.api.close()  # type: ignore[no-untyped-call]


async def connect(settings: Settings) -> Connections:
    """Open every connection, bring the schema up to date, ensure the streams and bucket."""
    s = settings
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=_KUBERNETES_THREADS, thread_name_prefix="kubernetes")
    )
    configuration = connecting.load().configuration
    # One kept-alive connection per thread: fewer, and threads would open (and TLS-handshake)
    # a new connection for each call past the pool's size.
    configuration.connection_pool_maxsize = _KUBERNETES_THREADS
    api = client.ApiClient(configuration)
    # The client imports an API's module (seconds of CPU for CoreV1Api) on first use. Here,
    # before kopf starts, it costs less than in a worker thread under the first reconcile:
    # a Broadcast applied as the operator starts had its control record 3.5 s sooner.
    for each in (client.CoreV1Api, client.CustomObjectsApi, client.AppsV1Api):
        each(api)
    dsn = s.database.url.get_secret_value()
    pool = await pgconn.create_pool(s.database)
    # Queueing reads the ledger in keyset pages through one prepared statement. After five
    # runs Postgres may switch it to a generic plan, which cannot see that the cursor leaves
    # a page's worth of rows: 2.5-4 s a page of a 2M-row ledger, against 55 ms replanned.
    preparing_pool = await pgconn.create_pool(
        s.database,
        min_size=0,
        max_size=s.operator.preparing_connections,
        server_settings={"plan_cache_mode": "force_custom_plan"},
    )
    connection = await asyncpg.connect(dsn)
    try:
        await migrating.ensure_schema(
            connection, migrate=s.database.migrate, legacy_bot_id=s.database.legacy_bot_id
        )
    finally:
        await connection.close()
    nc = await natsconn.connect(
        s.nats, component=Component.OPERATOR, name="herald-operator", max_reconnect_attempts=-1
    )
    js = nc.jetstream(timeout=s.operator.nats_timeout_seconds)
    replicas = s.nats.replicas
    await streams.ensure_work_stream(js, replicas=replicas)
    await streams.ensure_messages_stream(js, replicas=replicas)
    await streams.ensure_events_stream(js, replicas=replicas)
    kv = await streams.ensure_control_bucket(js, replicas=replicas)
    timeouts = Timeouts.of(s.operator)
    return Connections(
        api=api,
        broadcasts=Broadcasts(api, field_manager=FIELD_MANAGER, timeout=timeouts.kubernetes),
        secrets=Secrets(api, timeout=timeouts.kubernetes),
        pool=pool,
        preparing_pool=preparing_pool,
        nc=nc,
        js=js,
        kv=kv,
        timeouts=timeouts,
    )
