"""The bot's probes, served by the bot as it runs in its container (`run`), on real parts."""

from __future__ import annotations

import asyncio
import contextlib

from kubernetes import client

from herald.bot.app import run
from herald.bot.settings import BotSettings, Settings
from herald.core.permissions import Component
from herald.core.settings import DatabaseSettings, TelegramSettings
from herald.dev.kubectl import Kubectl
from herald.dev.nats import NatsAccess
from herald.dev.processes import free_port, http_get
from herald.emulator import RunningEmulator
from herald.kube import connecting

TOKEN = "424243:bot-health-token"


def probe(port: int, path: str) -> tuple[int, str]:
    return http_get(f"http://127.0.0.1:{port}{path}")


async def test_a_running_bot_is_live_and_ready(
    kubectl: Kubectl, database: str, nats_access: NatsAccess, emulator: RunningEmulator
) -> None:
    await nats_access.create_streams()
    namespace = kubectl.namespace
    assert namespace is not None
    api = client.ApiClient(connecting.load(kubeconfig=str(kubectl.kubeconfig)).configuration)
    port = free_port()
    settings = Settings(
        bot=BotSettings(token=TOKEN, namespace=namespace, health_port=port, metrics_port=0),
        nats=nats_access.settings(Component.BOT),
        database=DatabaseSettings(url=database, min_connections=1, max_connections=2),
        telegram=TelegramSettings(api_url=emulator.url),
    )
    running = asyncio.create_task(run(settings, kubernetes=api))
    try:
        answers: dict[str, tuple[int, str]] = {}
        for _ in range(100):
            answers = {p: await asyncio.to_thread(probe, port, p) for p in ("/livez", "/readyz")}
            if answers["/livez"][0]:
                break
            await asyncio.sleep(0.2)
        assert answers == {"/livez": (200, "ok\n"), "/readyz": (200, "ok\n")}
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        api.close()  # type: ignore[no-untyped-call]
    assert await asyncio.to_thread(probe, port, "/livez") == (0, "")  # closed with the bot
    # And nothing of it polls on: every bot's updates loop stopped with the process.
    left = [t for t in asyncio.all_tasks() if t.get_name().startswith("herald-bot-")]
    assert left == []
