"""One process serves every Bot the operator published, beside the older form's bot: each
bot answers its own users, obeys its own admins, sees its own Broadcasts and reports them to
its own admins; a Bot withdrawn is no longer served. On real parts: the records are written to
the control bucket sealed, as the operator writes them."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import nats

from herald.core import subjects
from herald.core.bots import UpdatesMode
from herald.core.envelopes import CompletionRecord, encode
from herald.core.sealing import KeyRing, generate_key

Harness = Any  # the fixture's class lives in conftest.py

SHOP_TOKEN = "515151:shop-token"
NEWS_TOKEN = "525252:news-token"
SHOP_ADMIN = {"id": 3001, "is_bot": False, "first_name": "Sam", "language_code": "en"}
NEWS_ADMIN = {"id": 3002, "is_bot": False, "first_name": "Nia", "language_code": "en"}
GROUP = {"id": -100555, "type": "supergroup", "title": "Team"}


async def _two_bots(h: Harness) -> tuple[Any, Any]:
    shop = h.bot_record("shop-bot", SHOP_TOKEN, admins=(SHOP_ADMIN["id"],))
    # The news bot's users without a language it speaks get Russian.
    news = h.bot_record("news-bot", NEWS_TOKEN, admins=(NEWS_ADMIN["id"],), default_language="ru")
    await h.put_record(shop)
    await h.put_record(news)
    await h.served(shop)
    await h.served(news)
    return shop, news


async def test_every_bot_answers_start_in_its_own_chats(herald_bot: Harness) -> None:
    h = herald_bot
    await _two_bots(h)

    for token in (SHOP_TOKEN, NEWS_TOKEN, h.TOKEN):
        await h.send(h.USER, "/start", token=token)

    shop = await h.reply(h.USER["id"], "Hi, Uma", token=SHOP_TOKEN)
    # Uma's German is not spoken here: the news bot's defaultLanguage is.
    await h.reply(h.USER["id"], "Привет, Uma", token=NEWS_TOKEN)
    await h.reply(h.USER["id"], "Hi, Uma", token=h.TOKEN)
    assert shop.token == SHOP_TOKEN
    assert await h.sent_count(h.USER["id"], token=SHOP_TOKEN) == 1
    assert await h.sent_count(h.USER["id"], token=NEWS_TOKEN) == 1
    # A subscriber of each bot, under the id each Bot's record carries.
    for bot_id in ("515151", "525252", "424242"):
        row = await h.fetchrow(
            "SELECT is_active FROM subscribers WHERE bot_id = $1 AND chat_id = $2",
            bot_id,
            h.USER["id"],
        )
        assert row is not None and row["is_active"] is True, bot_id


async def test_each_bot_obeys_its_own_admins_on_its_own_broadcasts(herald_bot: Harness) -> None:
    h = herald_bot
    await _two_bots(h)
    await h.create_broadcast("shop-sale", bot="shop-bot")
    await h.create_broadcast("news-digest", bot="news-bot")
    await h.create_broadcast("older", bot="herald-bot")

    await h.send(SHOP_ADMIN, "/broadcasts", token=SHOP_TOKEN)
    listed = (await h.reply(SHOP_ADMIN["id"], "Broadcasts:", token=SHOP_TOKEN)).payload["text"]
    assert "shop-sale" in listed
    assert "news-digest" not in listed
    assert "older" not in listed

    # Another bot's admins are strangers here, the older form's admins included.
    await h.send(SHOP_ADMIN, "/broadcasts", token=NEWS_TOKEN)
    await h.reply(SHOP_ADMIN["id"], "only Herald admins", token=NEWS_TOKEN)
    await h.send(h.ADMIN, "/broadcasts", token=SHOP_TOKEN)
    await h.reply(h.ADMIN["id"], "only Herald admins", token=SHOP_TOKEN)

    # Another bot's Broadcast is not there for this bot's admins.
    await h.send(SHOP_ADMIN, "/pause news-digest", token=SHOP_TOKEN)
    await h.reply(SHOP_ADMIN["id"], "news-digest not found", token=SHOP_TOKEN)
    body = json.loads(await h.k("get", "broadcast", "news-digest", "-o", "json"))
    assert body["spec"]["paused"] is False

    await h.send(NEWS_ADMIN, "/pause news-digest", token=NEWS_TOKEN)
    await h.reply(NEWS_ADMIN["id"], "Paused news-digest", token=NEWS_TOKEN)
    body = json.loads(await h.k("get", "broadcast", "news-digest", "-o", "json"))
    assert body["spec"]["paused"] is True

    # The older form's bot sees every Broadcast of its namespace, as it always did.
    await h.send(h.ADMIN, "/broadcasts")
    listed = (await h.reply(h.ADMIN["id"], "Broadcasts:")).payload["text"]
    assert all(name in listed for name in ("shop-sale", "news-digest", "older"))


async def test_a_forwarded_post_becomes_a_broadcast_of_the_admins_bot(herald_bot: Harness) -> None:
    h = herald_bot
    await _two_bots(h)
    admin = SHOP_ADMIN["id"]

    message_id = await h.forward(SHOP_ADMIN, "Shop news", token=SHOP_TOKEN)
    audience = await h.reply(admin, "Who should receive this post?", token=SHOP_TOKEN)
    for data, step in (("n:a:all", "How fast"), ("n:r:10", "Send this post")):
        await h.press(SHOP_ADMIN, audience, data, token=SHOP_TOKEN)
        await h.wait_for(
            admin,
            lambda c, step=step: step in c.payload["text"],
            method="editMessageText",
            token=SHOP_TOKEN,
        )
    await h.press(SHOP_ADMIN, audience, "n:c:yes", token=SHOP_TOKEN)
    name = f"post-{admin}-{message_id}"
    await h.reply(admin, f"Broadcast {name}:", token=SHOP_TOKEN)

    body = await h.get_broadcast(name)
    assert body["metadata"]["namespace"] == h.namespace
    assert body["spec"]["botRef"]["name"] == "shop-bot"


async def test_completion_reports_go_to_the_admins_of_the_broadcasts_bot(
    herald_bot: Harness,
) -> None:
    h = herald_bot
    await _two_bots(h)
    await h.create_broadcast("shop-sale", bot="shop-bot")
    await h.create_broadcast("older", bot="herald-bot")

    def record(name: str) -> CompletionRecord:
        return CompletionRecord(
            uid=f"uid-{name}",
            namespace=h.namespace,
            name=name,
            outcome="Complete",
            total=1,
            delivered=1,
            blocked=0,
            failed=0,
            uncertain=0,
        )

    connection = await nats.connect(h.nats_url)
    try:
        js = connection.jetstream()
        # One consumer handles them in order: the shop's is settled before the older one's.
        await js.publish(subjects.COMPLETIONS_SUBJECT, encode(record("shop-sale")))
        await js.publish(subjects.COMPLETIONS_SUBJECT, encode(record("older")))
    finally:
        await connection.close()

    await h.reply(SHOP_ADMIN["id"], "Broadcast shop-sale finished", token=SHOP_TOKEN)
    await h.reply(h.ADMIN["id"], "Broadcast older finished")
    older_admins = [c.payload["text"] for c in await h.calls(h.ADMIN["id"], "sendMessage")] + [
        c.payload["text"] for c in await h.calls(h.ADMIN_RU["id"], "sendMessage")
    ]
    assert not any("shop-sale" in text for text in older_admins)
    assert await h.sent_count(NEWS_ADMIN["id"], token=NEWS_TOKEN) == 0


async def test_a_withdrawn_bot_is_no_longer_served(herald_bot: Harness) -> None:
    h = herald_bot
    _, news = await _two_bots(h)

    await h.purge_record(news)

    await h.until(lambda: news.key not in h.app.fleet.served, "the news bot stopped")
    assert h.app.fleet.bot_of(news.key) is None
    label = f"{h.namespace}/news-bot"
    assert not [t for t in asyncio.all_tasks() if label in t.get_name()]
    await h.send(h.USER, "/start", token=NEWS_TOKEN)
    await h.send(h.USER, "/start", token=SHOP_TOKEN)
    await h.reply(h.USER["id"], "Hi, Uma", token=SHOP_TOKEN)
    assert await h.sent_count(h.USER["id"], token=NEWS_TOKEN) == 0

    # Published again, with another admin: served again, that admin obeyed.
    again = h.bot_record("news-bot", NEWS_TOKEN, admins=(SHOP_ADMIN["id"],))
    await h.put_record(again)
    await h.served(again)
    await h.send(SHOP_ADMIN, "/broadcasts", token=NEWS_TOKEN)
    await h.reply(SHOP_ADMIN["id"], "No broadcasts yet", token=NEWS_TOKEN)


async def test_admins_change_in_place(herald_bot: Harness) -> None:
    h = herald_bot
    shop, _ = await _two_bots(h)
    bot = h.app.fleet.bot_of(shop.key)

    await h.put_record(h.bot_record("shop-bot", SHOP_TOKEN, admins=(NEWS_ADMIN["id"],)))
    await h.until(
        lambda: h.app.fleet.served[shop.key].admins == {NEWS_ADMIN["id"]}, "admins changed"
    )
    assert h.app.fleet.bot_of(shop.key) is bot  # the same session: not restarted
    await h.send(SHOP_ADMIN, "/broadcasts", token=SHOP_TOKEN)
    await h.reply(SHOP_ADMIN["id"], "only Herald admins", token=SHOP_TOKEN)
    await h.send(NEWS_ADMIN, "/broadcasts", token=SHOP_TOKEN)
    await h.reply(NEWS_ADMIN["id"], "No broadcasts yet", token=SHOP_TOKEN)


async def test_admin_commands_in_a_group_get_no_answer(herald_bot: Harness) -> None:
    h = herald_bot
    await h.send(h.ADMIN, "/broadcasts", chat=GROUP)
    await h.send(h.USER, "/pause sale", chat=GROUP)
    # Handled in order of arrival; the private command is answered after the group's.
    await h.send(h.ADMIN, "/help")
    await h.reply(h.ADMIN["id"], "/broadcasts")

    assert await h.emulator.messages(chat_id=GROUP["id"]) == []
    registry = h.app.metrics.registry
    assert not registry.get_sample_value("herald_bot_refusals_total", {"kind": "message"})
    assert registry.get_sample_value("herald_bot_updates_total", {"kind": "message"}) == 3


async def test_records_that_cannot_be_served_are_said_so(herald_bot: Harness) -> None:
    h = herald_bot
    shop = h.bot_record("shop-bot", SHOP_TOKEN)
    # The same Telegram bot twice: polled twice, each would take the other's updates.
    twin = h.bot_record("shop-twin", SHOP_TOKEN)
    # Sealed under a key this process does not have.
    foreign = h.bot_record("foreign-bot", "535353:foreign-token")
    foreign = foreign.model_copy(
        update={
            "token": KeyRing.parse(generate_key("other")).seal(
                "535353:foreign-token", bound_to=foreign.key
            )
        }
    )
    send_only = h.bot_record("send-only", "545454:send-only-token", updates=UpdatesMode.NONE)
    for record in (shop, twin, foreign, send_only):
        await h.put_record(record)

    await h.until(
        lambda: {twin.key, foreign.key, send_only.key} <= set(h.app.fleet.not_served),
        "the records left out",
    )
    not_served = h.app.fleet.not_served
    assert f"served as {h.namespace}/shop-bot already" in not_served[twin.key]
    assert "does not open" in not_served[foreign.key]
    assert "none" in not_served[send_only.key]
    assert set(h.app.fleet.served) == {shop.key, "HERALD_BOT_TOKEN"}
