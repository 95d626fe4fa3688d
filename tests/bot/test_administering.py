"""Admins control Broadcasts on the real API server, as the bot's own ServiceAccount."""

from __future__ import annotations

import asyncio
import time
from typing import Any

Harness = Any  # the fixture's class lives in conftest.py

STATUS = {
    "phase": "Sending",
    "total": 200,
    "delivered": 90,
    "blocked": 6,
    "failed": 4,
    "pending": 100,
    "uncertain": 0,
    "progress": "50%",
    "observedRate": 9.5,
}


def _holds(type_: str, reason: str) -> dict[str, str]:
    return {
        "type": type_,
        "status": "True",
        "reason": reason,
        "message": "",
        "lastTransitionTime": "2026-12-01T09:00:00Z",
    }


async def _spec_paused(h: Harness, name: str, expected: bool) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        body = await h.get_broadcast(name)
        if body["spec"].get("paused") is expected or time.monotonic() > deadline:
            return dict(body)
        await asyncio.sleep(0.1)


async def test_non_admin_pause_is_refused_and_changes_nothing(herald_bot: Harness) -> None:
    h = herald_bot
    await h.create_broadcast("sale")

    await h.send(h.USER, "/pause sale")

    await h.reply(h.USER["id"], "only Herald admins")
    body = await h.get_broadcast("sale")
    assert body["spec"]["paused"] is False
    assert "herald-bot" not in str(body["metadata"].get("managedFields"))


async def test_admin_pause_and_resume_set_spec_paused(herald_bot: Harness) -> None:
    h = herald_bot
    await h.create_broadcast("sale")

    await h.send(h.ADMIN, "/pause sale")

    await h.reply(h.ADMIN["id"], "Paused sale")
    body = await _spec_paused(h, "sale", True)
    assert body["spec"]["paused"] is True
    managers = {entry["manager"] for entry in body["metadata"]["managedFields"]}
    assert "herald-bot" in managers

    after = await h.sent_count(h.ADMIN["id"])
    await h.send(h.ADMIN, "/resume sale")
    await h.reply(h.ADMIN["id"], "Resumed sale", after=after)
    assert (await _spec_paused(h, "sale", False))["spec"]["paused"] is False


async def test_unknown_broadcast_is_reported(herald_bot: Harness) -> None:
    h = herald_bot
    await h.send(h.ADMIN, "/pause nothing-here")
    await h.reply(h.ADMIN["id"], "nothing-here not found")


async def test_broadcasts_lists_phase_and_progress(herald_bot: Harness) -> None:
    h = herald_bot
    await h.create_broadcast("sale")
    await h.create_broadcast("news")
    await h.set_status("sale", STATUS)

    await h.send(h.ADMIN, "/broadcasts")

    reply = await h.reply(h.ADMIN["id"], "Broadcasts:")
    text = reply.payload["text"]
    assert "sale · sending ▓▓▓▓▓░░░░░ 50%" in text
    assert "news · new ░░░░░░░░░░ 0%" in text


async def test_status_shows_counts_and_buttons_and_refresh_edits(herald_bot: Harness) -> None:
    h = herald_bot
    await h.create_broadcast("sale")
    await h.set_status("sale", STATUS)

    await h.send(h.ADMIN, "/status sale")

    status = await h.reply(h.ADMIN["id"], "Broadcast sale: sending")
    text = status.payload["text"]
    assert "(100 of 200)" in text
    assert "Delivered 90 · blocked 6 · failed 4 · uncertain 0 · pending 100" in text
    assert "Rate: 9.5 msg/s of 10 allowed" in text
    buttons = [
        b["callback_data"] for row in status.payload["reply_markup"]["inline_keyboard"] for b in row
    ]
    assert buttons == ["b:p:sale", "b:f:sale", "b:c:sale"]

    await h.set_status("sale", STATUS | {"delivered": 190, "pending": 0, "progress": "100%"})
    await h.press(h.ADMIN, status, "b:f:sale")

    edit = await h.wait_for(
        h.ADMIN["id"],
        lambda c: c.message_id == status.message_id and "(200 of 200)" in c.payload["text"],
        method="editMessageText",
    )
    assert "Delivered 190" in edit.payload["text"]


async def test_pause_button_pauses_and_offers_resume(herald_bot: Harness) -> None:
    h = herald_bot
    await h.create_broadcast("sale")
    await h.send(h.ADMIN, "/status sale")
    status = await h.reply(h.ADMIN["id"], "Broadcast sale")

    await h.press(h.ADMIN, status, "b:p:sale")

    edit = await h.wait_for(
        h.ADMIN["id"], lambda c: c.message_id == status.message_id, method="editMessageText"
    )
    assert "Paused by spec.paused" in edit.payload["text"]
    first = edit.payload["reply_markup"]["inline_keyboard"][0][0]
    assert first["callback_data"] == "b:r:sale"
    assert (await _spec_paused(h, "sale", True))["spec"]["paused"] is True


async def test_live_progress_edits_the_status_message(herald_bot: Harness) -> None:
    h = herald_bot
    await h.create_broadcast("sale")
    await h.set_status("sale", STATUS)
    await h.send(h.ADMIN, "/status sale")
    status = await h.reply(h.ADMIN["id"], "Broadcast sale")

    # The operator advances; nobody presses anything.
    done = {"phase": "Completed", "delivered": 190, "pending": 0}
    await h.set_status("sale", STATUS | done | {"conditions": [_holds("Complete", "Complete")]})

    edit = await h.wait_for(
        h.ADMIN["id"],
        lambda c: c.message_id == status.message_id and "completed" in c.payload["text"],
        method="editMessageText",
    )
    assert "Delivered 190" in edit.payload["text"]
    # Terminal: no further edits, however long we wait.
    await asyncio.sleep(1.5)
    edits = await h.calls(h.ADMIN["id"], "editMessageText")
    assert len(edits) == 1
    assert h.live.tracked == 0


async def test_live_progress_follows_a_stalled_broadcast_that_resumes(herald_bot: Harness) -> None:
    h = herald_bot
    await h.create_broadcast("sale")
    stalled = {"phase": "Stalled", "conditions": [_holds("Stalled", "BotSecretNotFound")]}
    await h.set_status("sale", STATUS | stalled)
    await h.send(h.ADMIN, "/status sale")
    status = await h.reply(h.ADMIN["id"], "Broadcast sale: stalled")
    await asyncio.sleep(1.5)
    assert h.live.tracked == 1  # waits for a fix, then goes on: still followed

    # The Secret appears and sending resumes.
    await h.set_status("sale", STATUS | {"delivered": 150, "pending": 40, "conditions": []})
    edit = await h.wait_for(
        h.ADMIN["id"],
        lambda c: c.message_id == status.message_id and "Delivered 150" in c.payload["text"],
        method="editMessageText",
    )
    assert "Broadcast sale: sending" in edit.payload["text"]


async def test_cancel_asks_then_deletes(herald_bot: Harness) -> None:
    h = herald_bot
    await h.create_broadcast("sale")

    await h.send(h.ADMIN, "/cancel sale")
    ask = await h.reply(h.ADMIN["id"], "Delete broadcast sale?")
    assert (await h.get_broadcast("sale"))["metadata"]["name"] == "sale"  # not yet

    await h.press(h.ADMIN, ask, "b:y:sale")

    await h.wait_for(
        h.ADMIN["id"],
        lambda c: "Deleted broadcast sale" in c.payload["text"],
        method="editMessageText",
    )
    result = await h.k("get", "broadcast", "sale", check=False)
    assert result == ""
    gone = await asyncio.to_thread(h.kubectl, "get", "broadcast", "sale", check=False)
    assert "NotFound" in gone.stderr


async def test_russian_admin_gets_russian_texts(herald_bot: Harness) -> None:
    h = herald_bot
    await h.create_broadcast("sale")

    await h.send(h.ADMIN_RU, "/pause sale")

    await h.reply(h.ADMIN_RU["id"], "Рассылка sale на паузе")
    status = await h.reply(h.ADMIN_RU["id"], "Рассылка sale:")
    labels = [b["text"] for row in status.payload["reply_markup"]["inline_keyboard"] for b in row]
    assert "▶ Продолжить" in labels
