"""Bots as isolated identities on real parts: a token is used only after getMe verified it,
a forged one never, a rotated one from the next sends on, and no token rests on NATS in clear.
"""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import asyncpg
import nats
import yaml

from herald.core import envelopes, subjects
from herald.core.envelopes import BroadcastState, ControlRecord
from herald.core.importing import import_subscribers
from herald.core.subscribers import Subscriber
from herald.dev.nats import NatsServer
from herald.dev.systems import TOKEN, bot_manifest
from herald.dev.systems import LocalSystem as Herald

# A Secret claiming the demo bot's id (123456) with a token Telegram never issued.
FORGED = "123456:forged-by-another-team"
OLD, NEW = "777001:old-secret", "777001:new-secret"


def broadcast(name: str, bot: str, chats: range, **spec: Any) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "herald.dev/v1alpha1",
            "kind": "Broadcast",
            "metadata": {"name": name},
            "spec": {
                "botRef": {"name": bot},
                "content": {"text": f"from {name}"},
                "audience": {"chatIds": list(chats)},
                **spec,
            },
        }
    )


def bot(herald: Herald, name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(herald.kubectl("get", "bot", name, "-o", "json").stdout)
    return body


def ready(herald: Herald, name: str) -> dict[str, Any] | None:
    for condition in bot(herald, name).get("status", {}).get("conditions", []):
        if condition["type"] == "Ready":
            return dict(condition)
    return None


async def test_a_bot_is_verified_and_its_identity_is_getme_s(herald: Herald) -> None:
    await herald.wait_for(
        lambda: (ready(herald, "bot") or {}).get("status") == "True", what="the Bot Ready"
    )
    status = bot(herald, "bot")["status"]
    assert status["botId"] == 123456
    assert status["username"] == "herald_emulator_123456_bot"
    assert ready(herald, "bot")["reason"] == "Verified"  # type: ignore[index]
    listed = herald.kubectl("get", "bots").stdout
    assert listed.split()[:4] == ["NAME", "USERNAME", "READY", "ACTIVE"]
    assert "herald_emulator_123456_bot" in listed
    explained = herald.kubectl("explain", "bot.spec.limits.messagesPerSecond").stdout
    assert "Defaults to and at most Telegram's 30" in " ".join(explained.split())


async def test_a_forged_token_is_refused_and_never_used(herald: Herald) -> None:
    async with herald.emulator() as emulator:
        # Telegram knows the real token only.
        await emulator.configure({"bots": {TOKEN: "shop_bot"}})
        herald.create_bot_secret("forged", FORGED)
        herald.kubectl("apply", "-f", "-", input=json.dumps(bot_manifest("forged", "forged")))
        herald.kubectl("apply", "-f", "-", input=broadcast("theirs", "forged", range(1, 21)))
        herald.kubectl("apply", "-f", "-", input=broadcast("ours", "bot", range(101, 121)))
        await herald.wait_for(
            lambda: (ready(herald, "forged") or {}).get("reason") == "TokenInvalid",
            what="the forged Bot refused",
        )
        stalled = await herald.wait_condition("theirs", "Stalled")
        assert stalled["reason"] == "BotUnauthorized"
        assert "Telegram refused the token" in stalled["message"]
        await herald.wait_condition("ours", "Complete", within=60)
        sent = await emulator.messages()
        refused = await emulator.refusals(token=FORGED)
    assert sorted(m.chat_id or 0 for m in sent if m.method == "sendMessage") == list(
        range(101, 121)
    )
    assert {m.token for m in sent} == {TOKEN}
    assert {m.payload["text"] for m in sent if m.method == "sendMessage"} == {"from ours"}
    # The forged token was only ever shown to getMe.
    assert refused and {r.method for r in refused} == {"getMe"}
    assert bot(herald, "forged")["status"].get("botId") is None


async def test_a_rotated_token_is_used_from_the_next_sends_without_a_restart(
    herald: Herald,
) -> None:
    async with herald.emulator() as emulator:
        await emulator.configure({"bots": {TOKEN: "shop_bot", OLD: "news_bot", NEW: "news_bot"}})
        herald.create_bot_secret("news-token", OLD)
        herald.kubectl("apply", "-f", "-", input=json.dumps(bot_manifest("news", "news-token")))
        herald.kubectl(
            "apply",
            "-f",
            "-",
            input=broadcast("digest", "news", range(1, 61), rate={"messagesPerSecond": 5}),
        )

        async def sent_with(token: str) -> int:
            return sum(1 for m in await emulator.messages(token=token) if m.chat_id)

        loop = asyncio.get_running_loop()
        started = loop.time()
        while await sent_with(OLD) < 5:
            assert loop.time() - started < 60, "nothing was sent with the old token"
            await asyncio.sleep(0.2)
        # Telegram revokes the old token when a new one is issued.
        await emulator.configure({"bots": {TOKEN: "shop_bot", NEW: "news_bot"}})
        rotated = base64.b64encode(NEW.encode()).decode()
        patch = json.dumps({"data": {"token": rotated}})
        herald.kubectl("patch", "secret", "news-token", "--type=merge", "-p", patch)
        rotated_at = loop.time()
        while await sent_with(NEW) == 0:
            assert loop.time() - rotated_at < 10, "the new token did not reach the senders"
            await asyncio.sleep(0.2)
        await herald.wait_condition("digest", "Complete", within=90)
        summary = await emulator.summary()
    status = herald.status("digest")
    # Sends refused between the revocation and the new token went out again with it.
    assert status["delivered"] == 60
    assert summary.total == 60
    assert summary.duplicates == {}


async def test_no_token_rests_on_nats_in_clear_and_a_stopped_broadcast_drops_its_own(
    herald: Herald, nats_server: NatsServer
) -> None:
    herald.kubectl("apply", "-f", "-", input=broadcast("hello", "bot", range(1, 11)))
    await herald.wait_condition("hello", "Complete", within=60)
    client = await nats.connect(herald.nats_url)
    try:
        kv = await client.jetstream().key_value(subjects.CONTROL_BUCKET)
        uid = herald.get("hello")["metadata"]["uid"]
        entry = await kv.get(subjects.control_key(uid))
        assert entry.value is not None
        record = envelopes.decode(ControlRecord, entry.value)
        assert record.state is BroadcastState.STOPPED
        assert record.token is None
        assert (await kv.get(subjects.bot_record_key(herald.kubectl.namespace or "", "bot"))).value
    finally:
        await client.close()
    store = Path(nats_server.workdir) / "jetstream"
    for path in store.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


async def test_two_bots_send_at_once_each_with_its_token_to_its_own_subscribers(
    herald: Herald,
) -> None:
    """Overlapping audiences (chats 1..80 started both bots), a Broadcast on each at once:
    each message leaves with its own bot's token, to that bot's subscribers only, each bot
    at its own 30/s; a user who blocked bot A still gets bot B's message."""
    news_token = "888001:news-secret"
    shop_only, shared, news_only = range(1, 41), range(41, 81), range(81, 121)
    connection = await asyncpg.connect(herald.database)
    try:
        for bot_id, chats in (("123456", [*shop_only, *shared]), ("888001", [*shared, *news_only])):
            rows = [Subscriber(chat_id=c, first_name=f"U{c}") for c in chats]
            await import_subscribers(connection, rows, bot_id=bot_id)
    finally:
        await connection.close()
    async with herald.emulator() as emulator:
        # Chat 41 blocked the shop bot, not the news bot.
        await emulator.configure({"blocked_by": {TOKEN: [41]}})
        herald.create_bot_secret("news-token", news_token)
        herald.kubectl("apply", "-f", "-", input=json.dumps(bot_manifest("news", "news-token")))
        for name, bot_name in (("sale", "bot"), ("digest", "news")):
            manifest = yaml.safe_load(broadcast(name, bot_name, range(0)))
            manifest["spec"]["audience"] = {"subscribers": {}}
            manifest["spec"]["rate"] = {"messagesPerSecond": 30}
            herald.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest))
        for name in ("sale", "digest"):
            await herald.wait_condition(name, "Complete", within=90)
        summary = await emulator.summary()
        sent = [m for m in await emulator.messages() if m.method == "sendMessage"]
    by_token: dict[str, set[int]] = {}
    for message in sent:
        by_token.setdefault(message.token, set()).add(message.chat_id or 0)
        assert message.payload["text"] == ("from sale" if message.token == TOKEN else "from digest")
    assert by_token[TOKEN] == set(shop_only) | set(shared) - {41}
    assert by_token[news_token] == set(shared) | set(news_only)
    assert summary.duplicates == {}
    assert summary.max_per_second[TOKEN] <= 30
    assert summary.max_per_second[news_token] <= 30
    assert herald.status("sale")["blocked"] == 1
    assert herald.status("digest")["delivered"] == 80
    # The block deactivated chat 41 for the shop bot only.
    state = await herald.sql(
        "SELECT bot_id, is_active FROM subscribers WHERE chat_id = 41 ORDER BY bot_id"
    )
    assert [(r["bot_id"], r["is_active"]) for r in state] == [("123456", False), ("888001", True)]
    news = bot(herald, "news")["status"]
    assert news["subscribers"] == {"active": 80, "inactive": 0}
