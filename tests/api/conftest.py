"""herald-api on real parts: the session's kube-apiserver (TokenReview and SubjectAccessReview
of real service account tokens from TokenRequest, Roles and RoleBindings as a team writes
them), the session's NATS under the api user's permissions, and Postgres. herald-api itself
acts as its own ServiceAccount, bound to system:auth-delegator as the chart binds it.

The sender is not run here: where a test needs a message to reach its end, it plays the
sender's part by hand (the row recorded as the sender records it, the outcome announced on
herald.outcomes.<bot id>); the end-to-end tests run the real sender.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import nats
import pytest
import uvicorn
import yaml
from kubernetes import client, config
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from herald.api.app import create_app
from herald.api.metrics import Metrics
from herald.api.settings import ApiSettings, Settings
from herald.core import streams, subjects
from herald.core.envelopes import BotRecord, MessageOutcome, encode
from herald.core.messages import MessageState
from herald.core.settings import DatabaseSettings
from herald.dev import controlplane as controlplanes
from herald.dev import keys
from herald.dev.kubectl import Kubectl
from herald.dev.nats import NatsAccess
from herald.dev.processes import ManagedProcess, free_port

TIMEOUT = 20.0
API_ACCOUNT = "herald-api"

Answer = tuple[int, Any, dict[str, str]]


def text_body(text: str = "Your order has shipped", **fields: Any) -> dict[str, Any]:
    return {"chatId": 4242, "content": {"text": text}, **fields}


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {TIMEOUT:g}s: {what}")
        await asyncio.sleep(0.05)


def token_kubeconfig(admin_kubeconfig: Path, token: str, path: Path) -> Path:
    """A kubeconfig for the same API server that authenticates with ``token``."""
    admin = yaml.safe_load(admin_kubeconfig.read_text())
    cluster = admin["clusters"][0]
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [cluster],
                "users": [{"name": "token", "user": {"token": token}}],
                "contexts": [
                    {"name": "token", "context": {"cluster": cluster["name"], "user": "token"}}
                ],
                "current-context": "token",
            }
        )
    )
    path.chmod(0o600)
    return path


def role_manifest(name: str, *, bots: list[str], verbs: list[str]) -> str:
    """The Role docs/transactional.md gives a team: verbs on messages of its Bots."""
    return json.dumps(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": name},
            "rules": [
                {
                    "apiGroups": ["herald.dev"],
                    "resources": ["messages"],
                    "resourceNames": bots,
                    "verbs": verbs,
                }
            ],
        }
    )


def ledger_role_manifest(name: str, *, broadcasts: list[str]) -> str:
    """The Role docs/transactional.md gives a reader of Broadcasts' ledgers."""
    return json.dumps(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": name},
            "rules": [
                {
                    "apiGroups": ["herald.dev"],
                    "resources": ["broadcasts/deliveries"],
                    "resourceNames": broadcasts,
                    "verbs": ["get"],
                }
            ],
        }
    )


@dataclass
class Cluster:
    """The test's namespace on the API server, and the service accounts a test creates."""

    kubectl: Kubectl
    admin: Kubectl
    _made: list[tuple[str, ...]] = field(default_factory=list)

    @property
    def namespace(self) -> str:
        assert self.kubectl.namespace is not None
        return self.kubectl.namespace

    async def k(self, *args: str, input: str | None = None, namespace: str | None = None) -> str:
        kubectl = self.kubectl if namespace is None else self.admin.in_namespace(namespace)
        result = await asyncio.to_thread(kubectl, *args, input=input)
        return result.stdout

    async def account(
        self,
        name: str,
        *,
        bots: list[str] | None = None,
        verbs: tuple[str, ...] = ("create", "get"),
        namespace: str | None = None,
    ) -> str:
        """A ServiceAccount in ``namespace`` (default: the test's), with a Role granting
        ``verbs`` on the messages of ``bots`` (None: no Role at all), and a token for it
        from TokenRequest, as `kubectl create token` asks for one."""
        await self.k("create", "serviceaccount", name, namespace=namespace)
        if bots is not None:
            await self.grant(name, bots=bots, verbs=verbs, namespace=namespace)
        return (await self.k("create", "token", name, "--duration=1h", namespace=namespace)).strip()

    async def grant(
        self,
        name: str,
        *,
        bots: list[str],
        verbs: tuple[str, ...] = ("create", "get"),
        namespace: str | None = None,
    ) -> None:
        role = f"{name}-messages"
        await self.k(
            "apply",
            "-f",
            "-",
            input=role_manifest(role, bots=bots, verbs=list(verbs)),
            namespace=namespace,
        )
        where = namespace or self.namespace
        await self.k(
            "create",
            "rolebinding",
            role,
            f"--role={role}",
            f"--serviceaccount={where}:{name}",
            namespace=namespace,
        )

    async def ledger_reader(self, name: str, *, broadcasts: list[str] | None) -> str:
        """A ServiceAccount with a Role granting get on the ledgers of ``broadcasts`` (None:
        no Role), and a token for it."""
        await self.k("create", "serviceaccount", name)
        if broadcasts is not None:
            role = f"{name}-ledger"
            await self.k(
                "apply", "-f", "-", input=ledger_role_manifest(role, broadcasts=broadcasts)
            )
            await self.k(
                "create",
                "rolebinding",
                role,
                f"--role={role}",
                f"--serviceaccount={self.namespace}:{name}",
            )
        return (await self.k("create", "token", name, "--duration=1h")).strip()

    async def can(self, verb: str, bot: str, account: str) -> bool:
        """What the API server itself answers now for the account, asked as herald-api asks
        (`kubectl auth can-i` cannot: it resolves the resource by discovery, and no API
        server serves messages.herald.dev)."""
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": f"system:serviceaccount:{self.namespace}:{account}",
                "groups": [
                    "system:serviceaccounts",
                    f"system:serviceaccounts:{self.namespace}",
                    "system:authenticated",
                ],
                "resourceAttributes": {
                    "verb": verb,
                    "group": "herald.dev",
                    "resource": "messages",
                    "name": bot,
                    "namespace": self.namespace,
                },
            },
        }
        answer = await self.k("create", "-o", "json", "-f", "-", input=json.dumps(review))
        return bool(json.loads(answer)["status"].get("allowed"))

    async def other_namespace(self) -> str:
        namespace = f"t-{uuid.uuid4().hex[:10]}"
        await asyncio.to_thread(self.admin, "create", "namespace", namespace)
        self._made.append(("namespace", namespace))
        return namespace

    def clean(self) -> None:
        for kind, name in self._made:
            self.admin("delete", kind, name, "--wait=false", check=False)


@pytest.fixture
def cluster(kubectl: Kubectl, controlplane: controlplanes.ControlPlane) -> Any:
    made = Cluster(kubectl, Kubectl(controlplane.kubeconfig))
    yield made
    made.clean()


@pytest.fixture
def api_kubeconfig(
    kubectl: Kubectl, controlplane: controlplanes.ControlPlane, tmp_path: Path
) -> Any:
    """herald-api's own identity: a ServiceAccount bound to system:auth-delegator (the
    ClusterRole that may create TokenReviews and SubjectAccessReviews) and to get on
    Broadcasts, with its token."""
    admin = Kubectl(controlplane.kubeconfig)
    binding = f"herald-api-{kubectl.namespace}"
    kubectl("create", "serviceaccount", API_ACCOUNT)
    admin(
        "create",
        "clusterrolebinding",
        binding,
        "--clusterrole=system:auth-delegator",
        f"--serviceaccount={kubectl.namespace}:{API_ACCOUNT}",
    )
    # And get on Broadcasts, as the chart's ClusterRole grants it: a ledger is kept by uid.
    reader = f"herald-api-broadcasts-{kubectl.namespace}"
    admin("create", "clusterrole", reader, "--verb=get", "--resource=broadcasts.herald.dev")
    admin(
        "create",
        "clusterrolebinding",
        reader,
        f"--clusterrole={reader}",
        f"--serviceaccount={kubectl.namespace}:{API_ACCOUNT}",
    )
    token = kubectl("create", "token", API_ACCOUNT, "--duration=1h").stdout.strip()
    yield token_kubeconfig(controlplane.kubeconfig, token, tmp_path / "herald-api.kubeconfig")
    admin("delete", "clusterrolebinding", binding, check=False)
    admin("delete", "clusterrolebinding", reader, check=False)
    admin("delete", "clusterrole", reader, check=False)


def kube_client(kubeconfig: Path) -> client.ApiClient:
    configuration = client.Configuration()
    config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=str(kubeconfig), client_configuration=configuration
    )
    return client.ApiClient(configuration)


@dataclass
class Api:
    """herald-api and what a test checks it with: HTTP, the table, NATS as admin. Bots put
    before :meth:`running` are known from its first answer on (ready waits for the records).
    """

    cluster: Cluster
    dsn: str
    nats_access: NatsAccess
    kubeconfig: Path
    logs: Path
    url: str = ""
    http: aiohttp.ClientSession | None = None
    exit_codes: list[int | None] = field(default_factory=list)
    started: list[ManagedProcess] = field(default_factory=list)

    @property
    def nats_url(self) -> str:
        return self.nats_access.url

    def settings(self, **overrides: Any) -> Settings:
        api = ApiSettings(
            host="127.0.0.1",
            port=free_port(),
            **{"republish_seconds": 1.0, "callback_backoff_seconds": 0.05} | overrides,
        )
        return Settings(
            api=api,
            nats=self.nats_access.settings("api"),
            database=DatabaseSettings(url=SecretStr(self.dsn)),
        )

    @contextlib.asynccontextmanager
    async def running(self, **overrides: Any) -> AsyncIterator[Api]:
        """herald-api in this process with these ``ApiSettings`` overrides, ready."""
        async with (
            serving(self.settings(**overrides), kubeconfig=self.kubeconfig) as url,
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http,
        ):
            self.url, self.http = url, http
            await until(lambda: self.ready(url), "herald-api ready")
            try:
                yield self
            finally:
                self.url, self.http = "", None

    @contextlib.asynccontextmanager
    async def processes(self, count: int, **env: str) -> AsyncIterator[list[str]]:
        """``count`` herald-api processes, as the console script runs them, ready; yields
        their URLs, and stops them with SIGTERM at the end, as Kubernetes does."""
        script = Path(sys.executable).parent / "herald-api"
        started = self.started = []
        urls: list[str] = []
        base = {
            **os.environ,
            **self.nats_access.env("api"),
            "HERALD_DATABASE_URL": self.dsn,
            "HERALD_API_HOST": "127.0.0.1",
            "KUBECONFIG": str(self.kubeconfig),
            **env,
        }
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            self.http = http
            try:
                for index in range(count):
                    port = free_port()
                    process = ManagedProcess(
                        f"herald-api-{index}",
                        [str(script)],
                        self.logs / f"herald-api-{index}.log",
                        env={**base, "HERALD_API_PORT": str(port)},
                    )
                    started.append(process.start())
                    urls.append(f"http://127.0.0.1:{port}")
                for process, url in zip(started, urls, strict=True):
                    await until(
                        functools.partial(self._process_ready, process, url),
                        f"{process.name} ready",
                    )
                self.url = urls[0]
                yield urls
            finally:
                for process in started:
                    await asyncio.to_thread(process.stop)
                self.url, self.http = "", None
        self.exit_codes = [process.returncode for process in started]

    async def _process_ready(self, process: ManagedProcess, url: str) -> bool:
        if not process.alive:
            raise AssertionError(f"{process.name} exited:\n{process.tail()}")
        try:
            return await self.ready(url)
        except aiohttp.ClientError:
            return False

    @property
    def client(self) -> aiohttp.ClientSession:
        assert self.http is not None, "herald-api is not running"
        return self.http

    async def ready(self, url: str) -> bool:
        async with self.client.get(url + "/readyz") as answer:
            return answer.status == 200

    @property
    def namespace(self) -> str:
        return self.cluster.namespace

    body = staticmethod(text_body)
    until = staticmethod(until)

    def messages_url(self, bot: str, *, namespace: str | None = None) -> str:
        return f"{self.url}/v1/namespaces/{namespace or self.namespace}/bots/{bot}/messages"

    async def post(
        self,
        bot: str,
        body: Any,
        *,
        token: str | None,
        key: str | None = "key-1",
        namespace: str | None = None,
        wait: float | None = None,
        url: str | None = None,
    ) -> Answer:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if key is not None:
            headers["Idempotency-Key"] = key
        params = {"wait": str(wait)} if wait is not None else {}
        data = body if isinstance(body, bytes | str) else json.dumps(body)
        target = (url or self.url) + self.messages_url(bot, namespace=namespace)[len(self.url) :]
        async with self.client.post(target, data=data, headers=headers, params=params) as answer:
            return answer.status, await answer.json(), dict(answer.headers)

    async def get(
        self, bot: str, message_id: str, *, token: str | None, namespace: str | None = None
    ) -> Answer:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        async with self.client.get(
            f"{self.messages_url(bot, namespace=namespace)}/{message_id}", headers=headers
        ) as answer:
            return answer.status, await answer.json(), dict(answer.headers)

    async def text(self, path: str) -> tuple[int, str]:
        async with self.client.get(self.url + path) as answer:
            return answer.status, await answer.text()

    async def put_bot(
        self,
        name: str,
        *,
        bot_id: str = "700001",
        callback_secret: str | None = None,
        namespace: str | None = None,
    ) -> BotRecord:
        """A Bot as the operator publishes it once verified: sealed under the session's ring."""
        namespace = namespace or self.namespace
        key = subjects.bot_record_key(namespace, name)
        record = BotRecord(
            namespace=namespace,
            name=name,
            generation=1,
            bot_id=bot_id,
            username=f"{name.replace('-', '_')}_bot",
            token=keys.seal(f"{bot_id}:secret", bound_to=key),
            callback_secret=(
                keys.seal(callback_secret, bound_to=key + "/callbacks")
                if callback_secret is not None
                else None
            ),
        )
        connection = await nats.connect(self.nats_url)
        try:
            kv = await streams.ensure_control_bucket(connection.jetstream())
            await kv.put(record.key, encode(record))
        finally:
            await connection.close()
        return record

    async def rows(self) -> list[asyncpg.Record]:
        connection = await asyncpg.connect(self.dsn)
        try:
            return list(await connection.fetch("SELECT * FROM messages ORDER BY created_at"))
        finally:
            await connection.close()

    async def sql(self, query: str, *args: Any) -> str:
        connection = await asyncpg.connect(self.dsn)
        try:
            return str(await connection.execute(query, *args))
        finally:
            await connection.close()

    async def deliver(self, message_id: str, *, bot_id: str = "700001") -> None:
        """What the sender does once Telegram accepted the message: the row recorded
        (its callback made pending when it has a callbackUrl), then the outcome announced.
        Played by hand here: the sender is not part of these tests."""
        await self.sql(
            """
            UPDATE messages SET state = 'delivered', telegram_message_id = 77, sent_at = now(),
                callback_state = CASE WHEN callback_url IS NULL THEN NULL ELSE 'pending' END
            WHERE id = $1
            """,
            uuid.UUID(message_id),
        )
        connection = await nats.connect(self.nats_url)
        try:
            outcome = MessageOutcome(id=message_id, state=MessageState.DELIVERED)
            await connection.publish(subjects.outcome_subject(bot_id), encode(outcome))
            await connection.flush()
        finally:
            await connection.close()

    async def queued(self) -> int:
        """How many messages the stream holds for senders."""
        connection = await nats.connect(self.nats_url)
        try:
            info = await connection.jetstream().stream_info(subjects.MESSAGES_STREAM)
            return int(info.state.messages)
        finally:
            await connection.close()

    async def samples(self, name: str) -> list[tuple[dict[str, str], float]]:
        """The samples of one series of /metrics, with their labels."""
        _, page = await self.text("/metrics")
        return [
            (dict(sample.labels), sample.value)
            for family in text_string_to_metric_families(page)
            for sample in family.samples
            if sample.name == name
        ]


@contextlib.asynccontextmanager
async def serving(settings: Settings, *, kubeconfig: Path) -> AsyncIterator[str]:
    """herald-api in this process, on uvicorn as `herald-api` runs it; yields its URL."""
    kubernetes = kube_client(kubeconfig)
    app = create_app(settings, metrics=Metrics(), kubernetes=kubernetes)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=settings.api.port,
            log_config=None,
            access_log=False,
            lifespan="on",
        )
    )
    task = asyncio.ensure_future(server.serve())
    try:
        await until(lambda: _started(server, task), "herald-api started")
        yield f"http://127.0.0.1:{settings.api.port}"
    finally:
        server.should_exit = True
        await task
        kubernetes.close()  # type: ignore[no-untyped-call]


async def _started(server: uvicorn.Server, task: asyncio.Future[None]) -> bool:
    if task.done():
        task.result()
        raise AssertionError("herald-api stopped while starting")
    return server.started


@pytest.fixture
async def herald(
    cluster: Cluster, api_kubeconfig: Path, nats_access: NatsAccess, database: str, tmp_path: Path
) -> Api:
    """herald-api, not started yet; NATS' streams and bucket made, as the operator makes
    them."""
    await nats_access.create_streams()
    return Api(cluster, database, nats_access, api_kubeconfig, tmp_path)
