"""The bot process as it runs in production, in this process: polling the emulator, the real
API server (acting as the bot's own ServiceAccount, with bot/rbac.yaml applied), Postgres and
NATS, with the older form's bot of HERALD_BOT_TOKEN and whichever Bot records a test writes to
the control bucket. Tests talk to it the way Telegram users do: through injected updates."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import nats
import pytest
from kubernetes import client, config

from herald.bot.app import BotApp, assemble
from herald.bot.live import LiveStatus
from herald.bot.rosters import LEGACY_KEY
from herald.bot.settings import BotSettings, Settings
from herald.core import streams, subjects
from herald.core.bots import UpdatesMode
from herald.core.envelopes import BotRecord, encode
from herald.core.permissions import Component
from herald.core.settings import DatabaseSettings, TelegramSettings
from herald.dev import keys
from herald.dev.kubectl import Kubectl
from herald.dev.nats import NatsAccess
from herald.dev.processes import free_port
from herald.emulator import EmulatorClient, RecordedMessage, RunningEmulator

TOKEN = "424242:bot-test-token"
BOT_ID = "424242"  # whose subscribers the bot records
OTHER_BOT_ID = "535353"  # a bot the same database serves, which this one must leave alone
ADMIN = {"id": 1001, "is_bot": False, "first_name": "Ada", "language_code": "en"}
ADMIN_RU = {"id": 1002, "is_bot": False, "first_name": "Борис", "language_code": "ru"}
USER = {"id": 2001, "is_bot": False, "first_name": "Uma", "username": "uma", "language_code": "de"}
SERVICE_ACCOUNT = "herald-bot"
RBAC = Path(__file__).resolve().parents[2] / "bot" / "rbac.yaml"
TIMEOUT = 20.0


def impersonating_client(kubeconfig: Path, namespace: str) -> client.ApiClient:
    """A client that acts as the bot's ServiceAccount, as the pod would in the cluster: the
    API server authorises every request against the ServiceAccount's RBAC, not the admin's."""
    configuration = client.Configuration()
    config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=str(kubeconfig), client_configuration=configuration
    )
    api = client.ApiClient(configuration)
    api.set_default_header(  # type: ignore[no-untyped-call]
        "Impersonate-User", f"system:serviceaccount:{namespace}:{SERVICE_ACCOUNT}"
    )
    # Impersonate-Group may repeat; the client sends one value per header, so name the one
    # group that matters for RBAC here and let authentication add system:authenticated.
    api.set_default_header(  # type: ignore[no-untyped-call]
        "Impersonate-Group", "system:serviceaccounts"
    )
    return api


def broadcast_manifest(
    name: str, *, paused: bool = False, rate: int = 10, bot: str = "herald-bot"
) -> str:
    return json.dumps(
        {
            "apiVersion": "herald.dev/v1alpha1",
            "kind": "Broadcast",
            "metadata": {"name": name},
            "spec": {
                "botRef": {"name": bot},
                "content": {"text": "Sale starts now"},
                "audience": {"subscribers": {}},
                "rate": {"messagesPerSecond": rate},
                "paused": paused,
            },
        }
    )


@dataclass
class Harness:
    """What a test needs: the running bot, the emulator, kubectl in the test's namespace."""

    ADMIN = ADMIN
    ADMIN_RU = ADMIN_RU
    USER = USER
    TOKEN = TOKEN
    BOT_ID = BOT_ID
    OTHER_BOT_ID = OTHER_BOT_ID

    app: BotApp
    app_kubernetes: client.ApiClient
    emulator: EmulatorClient
    kubectl: Kubectl
    dsn: str
    nats_url: str
    _ids: itertools.count[int]

    @property
    def namespace(self) -> str:
        assert self.kubectl.namespace is not None
        return self.kubectl.namespace

    @property
    def live(self) -> LiveStatus:
        """The live status messages of the bot of HERALD_BOT_TOKEN."""
        live = self.app.fleet.live_of(LEGACY_KEY)
        assert live is not None
        return live

    def bot_record(
        self,
        name: str,
        token: str,
        *,
        admins: tuple[int, ...] = (),
        updates: UpdatesMode = UpdatesMode.POLLING,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        default_language: str | None = None,
    ) -> BotRecord:
        """A Bot of the test's namespace as the operator publishes it: sealed under the
        session's token key ring, bound to its key."""
        key = subjects.bot_record_key(self.namespace, name)
        return BotRecord(
            namespace=self.namespace,
            name=name,
            generation=1,
            bot_id=subjects.bot_id_of(token),
            username=f"{name.replace('-', '_')}_bot",
            token=keys.seal(token, bound_to=key),
            admins=admins,
            updates=updates,
            webhook_url=webhook_url,
            webhook_secret=(
                keys.seal(webhook_secret, bound_to=key + "/webhook") if webhook_secret else None
            ),
            default_language=default_language,
        )

    async def put_record(self, record: BotRecord) -> None:
        connection = await nats.connect(self.nats_url)
        try:
            kv = await streams.ensure_control_bucket(connection.jetstream())
            await kv.put(record.key, encode(record))
        finally:
            await connection.close()

    async def purge_record(self, record: BotRecord) -> None:
        """As the operator withdraws a deleted Bot's record."""
        connection = await nats.connect(self.nats_url)
        try:
            kv = await streams.ensure_control_bucket(connection.jetstream())
            await kv.purge(record.key)
        finally:
            await connection.close()

    async def until(self, check: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {TIMEOUT}s: {what}")
            await asyncio.sleep(0.05)

    async def served(self, record: BotRecord) -> None:
        """Until the process serves the Bot of ``record``, as it is now."""
        await self.until(
            lambda: (
                (bot := self.app.fleet.served.get(record.key)) is not None
                and bot.admins == frozenset(record.admins)
            ),
            f"{record.key} served",
        )

    async def k(self, *args: str, input: str | None = None, check: bool = True) -> str:
        # kubectl blocks; the emulator and the bot run on this event loop.
        result = await asyncio.to_thread(self.kubectl, *args, input=input, check=check)
        return result.stdout

    async def create_broadcast(self, name: str, **kwargs: Any) -> None:
        await self.k("create", "-f", "-", input=broadcast_manifest(name, **kwargs))

    async def set_status(self, name: str, status: dict[str, Any]) -> None:
        await self.k(
            "patch",
            "broadcast",
            name,
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps({"status": status}),
        )

    async def get_broadcast(self, name: str) -> dict[str, Any]:
        return dict(
            json.loads(
                await self.k("get", "broadcast", name, "-o", "json", "--show-managed-fields")
            )
        )

    def _message(
        self, user: dict[str, Any], chat: dict[str, Any] | None = None, **fields: Any
    ) -> dict[str, Any]:
        private = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
        return {
            "message_id": next(self._ids),
            "date": int(time.time()),
            "chat": chat or private,
            "from": user,
            **fields,
        }

    def text_message(
        self, user: dict[str, Any], text: str, *, chat: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        fields: dict[str, Any] = {"text": text}
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            fields["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        return self._message(user, chat, **fields)

    async def send(
        self,
        user: dict[str, Any],
        text: str,
        *,
        token: str = TOKEN,
        chat: dict[str, Any] | None = None,
    ) -> None:
        message = self.text_message(user, text, chat=chat)
        await self.emulator.inject_updates(token, [{"message": message}])

    async def forward(self, user: dict[str, Any], text: str, *, token: str = TOKEN) -> int:
        """The admin forwards a channel post to the bot; returns the forwarded message's id."""
        message = self._message(
            user,
            text=text,
            forward_origin={
                "type": "channel",
                "chat": {"id": -100777, "type": "channel", "title": "Shop news"},
                "message_id": 42,
                "date": int(time.time()),
            },
        )
        await self.emulator.inject_updates(token, [{"message": message}])
        return int(message["message_id"])

    async def press(
        self, user: dict[str, Any], sent: RecordedMessage, data: str, *, token: str = TOKEN
    ) -> None:
        """The user taps the button with ``data`` under the bot's message ``sent``."""
        assert sent.message_id is not None and sent.chat_id is not None
        query = {
            "id": f"q{next(self._ids)}",
            "from": user,
            "chat_instance": "ci",
            "data": data,
            "message": {
                "message_id": sent.message_id,
                "date": int(time.time()),
                "chat": {"id": sent.chat_id, "type": "private", "first_name": user["first_name"]},
                "from": {"id": 424242, "is_bot": True, "first_name": "Herald"},
                "text": sent.payload.get("text", ""),
            },
        }
        await self.emulator.inject_updates(token, [{"callback_query": query}])

    async def chat_member(self, user: dict[str, Any], old: str, new: str) -> None:
        bot_user = {"id": 424242, "is_bot": True, "first_name": "Herald"}
        update = {
            "my_chat_member": {
                "chat": {"id": user["id"], "type": "private", "first_name": user["first_name"]},
                "from": user,
                "date": int(time.time()),
                "old_chat_member": {"status": old, "user": bot_user}
                | ({"until_date": 0} if old == "kicked" else {}),
                "new_chat_member": {"status": new, "user": bot_user}
                | ({"until_date": 0} if new == "kicked" else {}),
            }
        }
        await self.emulator.inject_updates(TOKEN, [update])

    async def calls(
        self, chat_id: int, method: str | None = None, *, token: str = TOKEN
    ) -> list[RecordedMessage]:
        return await self.emulator.messages(token=token, chat_id=chat_id, method=method)

    async def wait_for(
        self,
        chat_id: int,
        check: Callable[[RecordedMessage], bool],
        *,
        method: str | None = None,
        after: int = 0,
        token: str = TOKEN,
    ) -> RecordedMessage:
        """The first call to ``chat_id`` (from index ``after``) that passes ``check``."""
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            for call in (await self.calls(chat_id, method, token=token))[after:]:
                if check(call):
                    return call
            await asyncio.sleep(0.05)
        seen = [(c.method, c.payload.get("text")) for c in await self.calls(chat_id, token=token)]
        raise AssertionError(f"no matching call to {chat_id} within {TIMEOUT}s; saw {seen}")

    async def reply(
        self, chat_id: int, contains: str, *, after: int = 0, token: str = TOKEN
    ) -> RecordedMessage:
        return await self.wait_for(
            chat_id,
            lambda c: contains in str(c.payload.get("text", "")),
            method="sendMessage",
            after=after,
            token=token,
        )

    async def sent_count(self, chat_id: int, *, token: str = TOKEN) -> int:
        return len(await self.calls(chat_id, "sendMessage", token=token))

    async def execute(self, query: str, *args: Any) -> None:
        connection = await asyncpg.connect(self.dsn)
        try:
            await connection.execute(query, *args)
        finally:
            await connection.close()

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        connection = await asyncpg.connect(self.dsn)
        try:
            return await connection.fetchrow(query, *args)
        finally:
            await connection.close()


def bot_settings(
    kubectl: Kubectl, database: str, nats_access: NatsAccess, emulator: RunningEmulator, **bot: Any
) -> Settings:
    namespace = kubectl.namespace
    assert namespace is not None
    fields: dict[str, Any] = {
        "token": TOKEN,
        "admins": frozenset({ADMIN["id"], ADMIN_RU["id"]}),
        "namespace": namespace,
        "secret_name": "herald-bot",
        "live_interval": 0.5,
        "webhook_port": free_port(),
        **bot,
    }
    return Settings(
        bot=BotSettings(**fields),
        nats=nats_access.settings(Component.BOT),
        database=DatabaseSettings(url=database, min_connections=1, max_connections=3),
        telegram=TelegramSettings(api_url=emulator.url),
    )


@contextlib.asynccontextmanager
async def running_bot(
    kubectl: Kubectl, settings: Settings, *, nats_access: NatsAccess, emulator: RunningEmulator
) -> AsyncIterator[Harness]:
    await asyncio.to_thread(kubectl, "apply", "-f", str(RBAC))
    await nats_access.create_streams()
    namespace = kubectl.namespace
    assert namespace is not None
    api = impersonating_client(kubectl.kubeconfig, namespace)
    emulator_client = EmulatorClient(emulator.url)
    try:
        async with assemble(settings, kubernetes=api) as app:
            yield Harness(
                app,
                api,
                emulator_client,
                kubectl,
                settings.database.url.get_secret_value(),
                nats_access.url,
                itertools.count(10_000),
            )
    finally:
        await emulator_client.close()
        api.close()  # type: ignore[no-untyped-call]


@pytest.fixture
def start_bot(
    kubectl: Kubectl, database: str, nats_access: NatsAccess, emulator: RunningEmulator
) -> Callable[..., contextlib.AbstractAsyncContextManager[Harness]]:
    """Starts the process with other bot settings: ``start_bot(webhook_url=...)``."""

    def start(**bot: Any) -> contextlib.AbstractAsyncContextManager[Harness]:
        settings = bot_settings(kubectl, database, nats_access, emulator, **bot)
        return running_bot(kubectl, settings, nats_access=nats_access, emulator=emulator)

    return start


@pytest.fixture
async def herald_bot(
    kubectl: Kubectl, database: str, nats_access: NatsAccess, emulator: RunningEmulator
) -> AsyncIterator[Harness]:
    """The process with the older form's bot (TOKEN, admins ADMIN and ADMIN_RU) only."""
    settings = bot_settings(kubectl, database, nats_access, emulator)
    async with running_bot(
        kubectl, settings, nats_access=nats_access, emulator=emulator
    ) as harness:
        yield harness
