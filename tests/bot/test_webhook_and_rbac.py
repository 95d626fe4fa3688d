"""Webhook mode, and the bot's Role on the real API server."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
from aiohttp import web
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from herald.bot.app import webhook_application
from herald.dev.processes import free_port

Harness = Any  # the fixture's class lives in conftest.py


async def test_webhook_handler_feeds_updates_to_the_dispatcher(herald_bot: Harness) -> None:
    h = herald_bot
    # Polling stops first: the same dispatcher now takes updates over HTTP, as it would from
    # Telegram in webhook mode (the emulator has no setWebhook to register the URL).
    await h.app.dispatcher.stop_polling()
    runner = web.AppRunner(webhook_application(h.app))
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        update = {
            "update_id": 1,
            "message": {
                "message_id": 7,
                "date": int(time.time()),
                "chat": {"id": h.USER["id"], "type": "private", "first_name": "Uma"},
                "from": h.USER,
                "text": "/start",
                "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
            },
        }
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{port}{h.app.settings.bot.webhook_path}"
            async with session.post(url, json=update) as response:
                assert response.status == 200
        await h.reply(h.USER["id"], "Uma")
        row = await h.fetchrow("SELECT is_active FROM subscribers WHERE chat_id = $1", h.USER["id"])
        assert row is not None and row["is_active"] is True
    finally:
        await runner.cleanup()


async def test_the_bot_role_allows_broadcasts_and_nothing_else(herald_bot: Harness) -> None:
    h = herald_bot
    account = f"system:serviceaccount:{h.namespace}:herald-bot"

    async def can(*args: str) -> bool:
        answer: str = await h.k("auth", "can-i", *args, f"--as={account}", check=False)
        return answer.strip() == "yes"

    for verb in ("get", "list", "watch", "patch", "create", "delete"):
        assert await can(verb, "broadcasts.herald.dev"), verb
    assert not await can("update", "broadcasts.herald.dev/status")
    assert not await can("get", "secrets")
    assert not await can("list", "configmaps")
    assert not await can("list", "broadcasts.herald.dev", "--all-namespaces")

    # The bot's own client (impersonating the ServiceAccount) is refused Secrets for real.
    core = client.CoreV1Api(h.app_kubernetes)
    try:
        await asyncio.to_thread(core.list_namespaced_secret, h.namespace)
    except ApiException as exc:
        assert exc.status == 403
    else:
        raise AssertionError("the bot's ServiceAccount could list Secrets")
