"""A whole Herald system on local processes, scoped to one namespace, database and JetStream:
the emulator, the operator and the sender supervisor, as end-to-end tests and benchmarks use
it on top of a running control plane, NATS and Postgres. The operator and the senders connect
to NATS as their own users, so everything the system does also tests their permissions."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import yaml

from herald.core.importing import import_subscribers
from herald.core.permissions import Component
from herald.core.subscribers import Subscriber
from herald.dev import keys, processes
from herald.dev.kubectl import Kubectl
from herald.dev.nats import NatsAccess
from herald.dev.supervising import SENDER_DEPLOYMENT, SenderSupervisor, sender_deployment
from herald.emulator import EmulatorClient

__all__ = ["TOKEN", "LocalSystem", "bot_manifest", "local_system"]

TOKEN = "123456:local-secret"  # noqa: S105 - the emulator accepts any well-formed token
BOT_ID = TOKEN.partition(":")[0]  # whose subscribers `seed` writes
BOT_SECRET = "bot"  # noqa: S105 - the name of the Secret, not its value


def bot_manifest(name: str, secret: str, **spec: Any) -> dict[str, Any]:
    """A Bot whose token is under key ``token`` of Secret ``secret``."""
    return {
        "apiVersion": "herald.dev/v1alpha1",
        "kind": "Bot",
        "metadata": {"name": name},
        "spec": {"tokenSecretRef": {"name": secret}, **spec},
    }


@dataclass
class LocalSystem:
    kubectl: Kubectl
    database: str
    nats_url: str  # the admin's, for the test's own checks
    emulator_url: str
    supervisor: SenderSupervisor
    operator: processes.ManagedProcess
    logs: Path
    # herald-api processes (local_system's `apis`), each at its URL.
    apis: list[processes.ManagedProcess] = field(default_factory=list)
    api_urls: list[str] = field(default_factory=list)

    def app_token(self, account: str = "app", *, bot: str = BOT_SECRET) -> str:
        """A token of a new ServiceAccount `account` that may send with (create) and read
        back (get) the messages of Bot `bot`, as an application's Role grants it
        (examples/transactional-app.yaml)."""
        role = f"{account}-messages"
        manifests = [
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": account}},
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": role},
                "rules": [
                    {
                        "apiGroups": ["herald.dev"],
                        "resources": ["messages"],
                        "resourceNames": [bot],
                        "verbs": ["create", "get"],
                    }
                ],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": role},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
                "subjects": [{"kind": "ServiceAccount", "name": account}],
            },
        ]
        self.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(manifests))
        return self.kubectl("create", "token", account).stdout.strip()

    @staticmethod
    def subscribers(
        count: int, *, start: int = 10_001, language: str | None = "en"
    ) -> list[Subscriber]:
        return [
            Subscriber(chat_id=start + i, first_name=f"User{i}", language_code=language)
            for i in range(count)
        ]

    def create_bot_secret(self, secret: str, token: str) -> None:
        """A bot token Secret; the emulator serves any well-formed token as its own bot."""
        self.kubectl("create", "secret", "generic", secret, f"--from-literal=token={token}")

    def emulator(self) -> EmulatorClient:
        return EmulatorClient(self.emulator_url)

    async def seed(self, subscribers: list[Subscriber]) -> None:
        connection = await asyncpg.connect(self.database)
        try:
            await import_subscribers(connection, subscribers, bot_id=BOT_ID)
        finally:
            await connection.close()

    async def sql(self, query: str, *args: Any) -> list[asyncpg.Record]:
        connection = await asyncpg.connect(self.database)
        try:
            return list(await connection.fetch(query, *args))
        finally:
            await connection.close()

    def apply(self, name: str, spec: Mapping[str, Any]) -> None:
        manifest = {
            "apiVersion": "herald.dev/v1alpha1",
            "kind": "Broadcast",
            "metadata": {"name": name},
            "spec": {"botRef": {"name": BOT_SECRET}, **spec},
        }
        self.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest))

    def get(self, name: str) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.kubectl("get", "bc", name, "-o", "json").stdout)
        return body

    def status(self, name: str) -> dict[str, Any]:
        status: dict[str, Any] = self.get(name).get("status", {})
        return status

    def condition(self, name: str, kind: str) -> dict[str, Any] | None:
        for condition in self.status(name).get("conditions", []):
            if condition["type"] == kind:
                return dict(condition)
        return None

    async def wait_for(
        self, check: Callable[[], bool], *, within: float = 60, what: str = "condition"
    ) -> None:
        """Poll a blocking ``check`` off the event loop until it holds."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if await asyncio.to_thread(check):
                return
            await asyncio.sleep(0.2)
        raise AssertionError(
            f"timed out after {within:.0f}s waiting for {what}; "
            f"operator log:\n{self.operator.tail(30)}"
        )

    async def wait_condition(self, name: str, kind: str, *, within: float = 60) -> dict[str, Any]:
        found: dict[str, Any] = {}

        def holds() -> bool:
            condition = self.condition(name, kind)
            if condition is not None and condition["status"] == "True":
                found.update(condition)
                return True
            return False

        await self.wait_for(holds, within=within, what=f"{kind}=True on {name}")
        return found


@contextlib.asynccontextmanager
async def local_system(
    *,
    kubeconfig: Path,
    kubectl: Kubectl,
    database: str,
    nats: NatsAccess,
    logs: Path,
    emulator_flags: list[str] | None = None,
    settings: Mapping[str, str] | None = None,
    apis: int = 0,
) -> AsyncIterator[LocalSystem]:
    """Emulator, operator (watching only ``kubectl.namespace``), sender supervisor, and
    ``apis`` herald-api processes."""
    with contextlib.ExitStack() as stack:
        emulator_url, _ = stack.enter_context(
            processes.emulator(logs / "emulator.log", flags=emulator_flags or [])
        )
        kubectl("create", "secret", "generic", BOT_SECRET, f"--from-literal=token={TOKEN}")
        # A Bot of the same name: Broadcasts naming it take the Bot's form, not the Secret's.
        # Paid broadcasting enabled, as the tests of paid Broadcasts need.
        paid = {"paid": {"enabled": True}}
        kubectl(
            "apply",
            "-f",
            "-",
            input=json.dumps(bot_manifest(BOT_SECRET, BOT_SECRET, limits=paid)),
        )
        deployment = sender_deployment(SENDER_DEPLOYMENT, kubectl.namespace or "default")
        kubectl("apply", "-f", "-", input=yaml.safe_dump(deployment))
        env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "HERALD_DATABASE_URL": database,
            "HERALD_TELEGRAM_API_URL": emulator_url,
            "HERALD_TOKEN_KEYS": keys.token_keys(),
            "HERALD_OPERATOR_NAMESPACES": json.dumps([kubectl.namespace]),
            "HERALD_OPERATOR_LIVENESS_PORT": str(processes.free_port()),
            "HERALD_OPERATOR_METRICS_PORT": "0",
            "HERALD_OPERATOR_REFRESH_SECONDS": "1",
            "HERALD_OPERATOR_TIMER_SECONDS": "0.5",
            "HERALD_SENDER_NAMESPACE": kubectl.namespace or "default",
            "HERALD_SENDER_DEPLOYMENT": SENDER_DEPLOYMENT,
            "HERALD_SENDER_METRICS_PORT": "0",
            "HERALD_SENDER_HEALTH_PORT": "0",
        }

        def env_of(component: Component) -> dict[str, str]:
            return env | nats.env(component) | dict(settings or {})

        operator = processes.ManagedProcess(
            name="operator",
            argv=[sys.executable, "-m", "herald.operator"],
            log_path=logs / "operator.log",
            env=env_of(Component.OPERATOR),
        ).start()
        stack.callback(operator.stop, timeout=15)
        # Watching, before anything is applied: a test's startAt or deadline a few seconds
        # ahead must not be spent on the operator's start (imports take seconds here).
        log = logs / "operator.log"
        processes.wait_until(
            lambda: log.exists() and "Initial authentication has finished" in log.read_text(),
            timeout=60,
            what="the operator to start watching",
            process=operator,
        )
        supervisor = SenderSupervisor(
            kubeconfig=kubeconfig,
            namespace=kubectl.namespace or "default",
            deployment=SENDER_DEPLOYMENT,
            env=env_of(Component.SENDER),
            logs=logs,
            interval=0.2,
        ).start()
        stack.callback(supervisor.stop)
        api_processes: list[processes.ManagedProcess] = []
        api_urls: list[str] = []
        for index in range(apis):
            port = processes.free_port()
            api = processes.ManagedProcess(
                name=f"herald-api-{index}",
                argv=[sys.executable, "-m", "herald.api"],
                log_path=logs / f"api-{index}.log",
                env=env_of(Component.API)
                | {"HERALD_API_HOST": "127.0.0.1", "HERALD_API_PORT": str(port)},
            ).start()
            stack.callback(api.stop, timeout=30)
            api_processes.append(api)
            api_urls.append(f"http://127.0.0.1:{port}")
        for api, url in zip(api_processes, api_urls, strict=True):
            processes.wait_until(
                functools.partial(processes.http_ok, f"{url}/readyz"),
                timeout=60,
                what=f"{api.name} /readyz",
                process=api,
                interval=0.2,
            )
        yield LocalSystem(
            kubectl=kubectl,
            database=database,
            nats_url=nats.url,
            emulator_url=emulator_url,
            supervisor=supervisor,
            operator=operator,
            logs=logs,
            apis=api_processes,
            api_urls=api_urls,
        )
