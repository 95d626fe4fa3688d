"""An admin forwards a post and walks the dialog; the API server accepts the Broadcast."""

from __future__ import annotations

import asyncio
from typing import Any

from herald.core.broadcasts import Broadcast

Harness = Any  # the fixture's class lives in conftest.py


def _buttons(call: Any) -> dict[str, str]:
    rows = call.payload["reply_markup"]["inline_keyboard"]
    return {button["text"]: button["callback_data"] for row in rows for button in row}


async def test_forwarded_post_becomes_a_broadcast(herald_bot: Harness) -> None:
    h = herald_bot
    admin = h.ADMIN["id"]
    # Two subscribers, so the audience question offers their languages; the subscribers of
    # another bot in the same database are not this bot's to count.
    await h.execute(
        "INSERT INTO subscribers (bot_id, chat_id, language_code) "
        "SELECT $1, g, 'ru' FROM generate_series(1, 5) g",
        h.OTHER_BOT_ID,
    )
    await h.send(h.USER, "/start")
    await h.send(h.ADMIN_RU, "/start")
    await h.reply(h.ADMIN_RU["id"], "Борис")

    message_id = await h.forward(h.ADMIN, "Black Friday: everything -50%")

    audience = await h.reply(admin, "Who should receive this post?")
    choices = _buttons(audience)
    assert choices["Everyone (2)"] == "n:a:all"
    assert choices["Language ru (1)"] == "n:a:ru"
    await h.press(h.ADMIN, audience, "n:a:ru")

    rate = await h.wait_for(
        admin, lambda c: "How fast" in c.payload["text"], method="editMessageText"
    )
    assert "n:r:25" in _buttons(rate).values()
    await h.press(h.ADMIN, audience, "n:r:10")

    confirm = await h.wait_for(
        admin, lambda c: "Send this post" in c.payload["text"], method="editMessageText"
    )
    assert "subscribers with language ru at 10 messages per second" in confirm.payload["text"]
    await h.press(h.ADMIN, audience, "n:c:yes")

    name = f"post-{admin}-{message_id}"
    await h.wait_for(
        admin, lambda c: f"Created broadcast {name}" in c.payload["text"], method="editMessageText"
    )
    await h.reply(admin, f"Broadcast {name}:")

    body = await h.get_broadcast(name)
    spec = body["spec"]
    assert spec["content"] == {
        "copyFrom": {"chatId": admin, "messageId": message_id},
        "parseMode": "HTML",
        "showCaptionAboveMedia": False,
        "disableNotification": False,
        "protectContent": False,
    }
    assert spec["audience"] == {"subscribers": {"languages": ["ru"]}}
    assert spec["rate"]["messagesPerSecond"] == 10
    assert spec["botRef"]["name"] == "herald-bot"
    assert body["metadata"]["namespace"] == h.namespace
    # What the API server stored is a valid Broadcast by the shared contract, too.
    assert Broadcast.model_validate(body).spec.content.copy_from is not None


async def test_discard_creates_nothing_and_old_buttons_expire(herald_bot: Harness) -> None:
    h = herald_bot
    admin = h.ADMIN["id"]
    await h.forward(h.ADMIN, "A post")
    audience = await h.reply(admin, "Who should receive this post?")
    await h.press(h.ADMIN, audience, "n:a:all")
    await h.wait_for(admin, lambda c: "How fast" in c.payload["text"], method="editMessageText")
    await h.press(h.ADMIN, audience, "n:r:25")
    await h.wait_for(
        admin, lambda c: "Send this post" in c.payload["text"], method="editMessageText"
    )

    await h.press(h.ADMIN, audience, "n:c:no")

    await h.wait_for(admin, lambda c: "Discarded" in c.payload["text"], method="editMessageText")
    assert (await h.k("get", "broadcasts", "-o", "name")).strip() == ""
    # A button of the finished dialog is answered as expired, not applied.
    await h.press(h.ADMIN, audience, "n:r:5")
    deadline = asyncio.get_running_loop().time() + 10
    answers: list[Any] = []
    while not answers and asyncio.get_running_loop().time() < deadline:
        calls = await h.emulator.messages(token=h.TOKEN, method="answerCallbackQuery")
        answers = [c for c in calls if "expired" in str(c.payload.get("text"))]
        await asyncio.sleep(0.05)
    assert answers
    assert (await h.k("get", "broadcasts", "-o", "name")).strip() == ""


async def test_non_admin_forward_is_refused(herald_bot: Harness) -> None:
    h = herald_bot
    await h.forward(h.USER, "Spam for everyone")
    await h.reply(h.USER["id"], "only Herald admins")
    assert (await h.k("get", "broadcasts", "-o", "name")).strip() == ""
