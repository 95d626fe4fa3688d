"""Webhook mode, and the bot's Role on the real API server."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from herald.bot.rosters import LEGACY_KEY
from herald.bot.settings import BotSettings
from herald.bot.webhooks import SECRET_HEADER
from herald.core.bots import UpdatesMode

Harness = Any  # the fixture's class lives in conftest.py
StartBot = Any

USER = {"id": 2001, "is_bot": False, "first_name": "Uma", "username": "uma", "language_code": "de"}

SHOP_TOKEN = "515151:shop-webhook-token"
SHOP_URL = "https://hooks.example/herald/shop"
SHOP_SECRET = "shop-secret_1"


def _start(update_id: int, user: dict[str, Any]) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": int(time.time()),
            "chat": {"id": user["id"], "type": "private", "first_name": user["first_name"]},
            "from": user,
            "text": "/start",
            "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
        },
    }


async def _post(
    port: int, path: str, update: dict[str, Any], *, secret: str | None
) -> tuple[int, str]:
    headers = {} if secret is None else {SECRET_HEADER: secret}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"http://127.0.0.1:{port}{path}", json=update, headers=headers) as response,
    ):
        return response.status, await response.text()


def _refusals(h: Harness, reason: str) -> float:
    registry = h.app.metrics.registry
    value = registry.get_sample_value("herald_bot_webhook_refusals_total", {"reason": reason})
    return value or 0.0


async def test_a_webhook_bot_takes_updates_only_with_its_secret(herald_bot: Harness) -> None:
    h = herald_bot
    record = h.bot_record(
        "shop-bot",
        SHOP_TOKEN,
        admins=(3001,),
        updates=UpdatesMode.WEBHOOK,
        webhook_url=SHOP_URL,
        webhook_secret=SHOP_SECRET,
    )
    await h.put_record(record)
    await h.served(record)
    port = h.app.fleet.webhooks.port
    path = "/herald/shop"

    assert await _post(port, path, _start(1, USER), secret=None) == (401, "Unauthorized")
    assert await _post(port, path, _start(2, USER), secret="guess") == (401, "Unauthorized")
    assert (await _post(port, "/herald/other", _start(3, USER), secret=SHOP_SECRET))[0] == 404
    assert _refusals(h, "no_secret") == 1
    assert _refusals(h, "wrong_secret") == 1
    assert _refusals(h, "unknown_path") == 1
    # Refused updates reached no handler: nobody was subscribed by them.
    assert await h.fetchrow("SELECT 1 FROM subscribers WHERE chat_id = $1", USER["id"]) is None

    assert (await _post(port, path, _start(4, USER), secret=SHOP_SECRET))[0] == 200
    await h.reply(USER["id"], "Uma", token=SHOP_TOKEN)
    row = await h.fetchrow("SELECT is_active FROM subscribers WHERE chat_id = $1", USER["id"])
    assert row is not None and row["is_active"] is True

    # Telegram was told where to post, and which secret to send with each update.
    for _ in range(400):
        calls = await h.emulator.messages(token=SHOP_TOKEN, method="setWebhook")
        if calls:
            break
        await asyncio.sleep(0.05)
    assert [(c.payload["url"], c.payload["secret_token"]) for c in calls] == [
        (SHOP_URL, SHOP_SECRET)
    ]


async def test_a_webhook_bot_without_a_secret_is_not_served(herald_bot: Harness) -> None:
    h = herald_bot
    record = h.bot_record(
        "open-bot", "616161:no-secret-token", updates=UpdatesMode.WEBHOOK, webhook_url=SHOP_URL
    )
    await h.put_record(record)

    await h.until(lambda: record.key in h.app.fleet.not_served, "the record refused")
    assert "secret token" in h.app.fleet.not_served[record.key]
    assert record.key not in h.app.fleet.served
    assert await h.emulator.messages(token="616161:no-secret-token") == []


def test_the_older_form_refuses_a_webhook_without_a_secret() -> None:
    with pytest.raises(ValidationError, match="HERALD_BOT_WEBHOOK_URL needs HERALD_BOT_WEBHOOK"):
        BotSettings(token="1:abc", webhook_url="https://bots.example/telegram/webhook")


async def test_the_older_form_in_webhook_mode_checks_its_secret(start_bot: StartBot) -> None:
    async with start_bot(
        webhook_url="https://bots.example/telegram/webhook", webhook_secret="older-form-secret"
    ) as h:
        await h.until(lambda: LEGACY_KEY in h.app.fleet.served, "the older form's bot served")
        settings = h.app.settings
        port, path = settings.bot.webhook_port, settings.bot.webhook_path
        assert (await _post(port, path, _start(1, USER), secret="older-form-secre"))[0] == 401
        assert _refusals(h, "wrong_secret") == 1
        assert (await _post(port, path, _start(2, USER), secret="older-form-secret"))[0] == 200
        await h.reply(USER["id"], "Uma")


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
