"""Recall and correction of what a broadcast delivered, through the whole system: the
emulator keeps its messages, so each test reads what every chat sees after the deletions
and edits, and the ledger says the same per row."""

from __future__ import annotations

import json
from typing import Any

from herald.dev.systems import TOKEN
from herald.dev.systems import LocalSystem as Herald

KEYBOARD = [[{"text": "Shop", "url": "https://shop.example"}]]
AUDIENCE = 12


def _patch(herald: Herald, name: str, spec: dict[str, Any]) -> None:
    herald.kubectl("patch", "bc", name, "--type=merge", "-p", json.dumps({"spec": spec}))


async def _complete(herald: Herald, name: str, spec: dict[str, Any]) -> list[int]:
    chats = [s.chat_id for s in herald.subscribers(AUDIENCE)]
    await herald.seed(herald.subscribers(AUDIENCE))
    herald.apply(name, {"audience": {"subscribers": {}}, "rate": {"messagesPerSecond": 30}, **spec})
    await herald.wait_condition(name, "Complete")
    assert herald.status(name)["delivered"] == AUDIENCE
    return chats


async def _all_corrected(herald: Herald, name: str) -> None:
    """Until the status of the current spec counts every message corrected."""

    def done() -> bool:
        body = herald.get(name)
        status = body.get("status", {})
        return bool(
            status.get("observedGeneration") == body["metadata"]["generation"]
            and status.get("corrected") == AUDIENCE
        )

    await herald.wait_for(done, what=f"every message of {name} corrected")


async def _seen(herald: Herald, chats: list[int]) -> dict[int, list[dict[str, Any]]]:
    async with herald.emulator() as emulator:
        return {chat: await emulator.chat(token=TOKEN, chat_id=chat) for chat in chats}


async def _rows(herald: Herald, name: str) -> list[Any]:
    uid = herald.get(name)["metadata"]["uid"]
    return await herald.sql(
        "SELECT chat_id, state, reason, message_ids, recall_outcome, recalled_at,"
        " correction_outcome, corrected_at FROM deliveries WHERE broadcast_uid = $1"
        " ORDER BY chat_id",
        uid,
    )


async def test_recall_of_a_completed_broadcast_deletes_every_message_it_may(
    herald: Herald,
) -> None:
    chats = await _complete(herald, "typo", {"content": {"text": "Sael", "buttons": KEYBOARD}})
    # Two messages went out more than 48 hours ago, as far as the ledger knows.
    old = chats[:2]
    uid = herald.get("typo")["metadata"]["uid"]
    await herald.sql(
        "UPDATE deliveries SET finished_at = now() - interval '49 hours'"
        " WHERE broadcast_uid = $1 AND chat_id = ANY($2::bigint[])",
        uid,
        old,
    )
    _patch(herald, "typo", {"recall": True})
    recalled = await herald.wait_condition("typo", "Recalled")
    status = herald.status("typo")
    assert status["recalled"] == AUDIENCE - len(old)
    assert "2 older than 48 hours" in recalled["message"]
    seen = await _seen(herald, chats)
    assert all(len(seen[chat]) == 1 for chat in old)
    assert all(seen[chat] == [] for chat in chats[2:])
    rows = await _rows(herald, "typo")
    assert {row["chat_id"]: row["recall_outcome"] for row in rows} == {
        chat: "tooOld" if chat in old else "recalled" for chat in chats
    }
    assert all(row["recalled_at"] is not None for row in rows)
    async with herald.emulator() as emulator:
        deletions = await emulator.messages(token=TOKEN, method="deleteMessage")
        assert sorted(m.chat_id for m in deletions if m.chat_id is not None) == chats[2:]
        assert await emulator.refusals(token=TOKEN) == []


async def test_recall_mid_send_stops_sending_and_deletes_what_went_out(herald: Herald) -> None:
    audience = 40
    await herald.seed(herald.subscribers(audience))
    herald.apply(
        "slow",
        {
            "content": {"text": "Oops"},
            "audience": {"subscribers": {}},
            "rate": {"messagesPerSecond": 4},
        },
    )
    await herald.wait_for(
        lambda: herald.status("slow").get("delivered", 0) >= 3, what="some deliveries"
    )
    _patch(herald, "slow", {"recall": True})
    await herald.wait_condition("slow", "Recalled")
    await herald.wait_condition("slow", "Complete")
    status = herald.status("slow")
    assert status["delivered"] < audience
    assert status["recalled"] == status["delivered"]
    assert status["failed"] == audience - status["delivered"]
    rows = await _rows(herald, "slow")
    assert {row["reason"] for row in rows if row["state"] == "failed"} == {"Recalled"}
    seen = await _seen(herald, [s.chat_id for s in herald.subscribers(audience)])
    assert all(messages == [] for messages in seen.values())


async def test_corrections_edit_every_message_and_keep_the_buttons(herald: Herald) -> None:
    chats = await _complete(herald, "fix", {"content": {"text": "Sael", "buttons": KEYBOARD}})
    _patch(herald, "fix", {"correction": {"text": "<b>Sale</b> {first_name}"}})
    await _all_corrected(herald, "fix")
    seen = await _seen(herald, chats)
    for index, chat in enumerate(chats):
        (message,) = seen[chat]
        assert message["text"] == f"Sale User{index}"
        assert message["reply_markup"]["inline_keyboard"][0][0]["url"] == "https://shop.example"
    # A second correction edits again.
    _patch(herald, "fix", {"correction": {"text": "Sale, for real", "parseMode": "None"}})
    await _all_corrected(herald, "fix")
    seen = await _seen(herald, chats)
    assert all(seen[chat][0]["text"] == "Sale, for real" for chat in chats)
    assert all("reply_markup" in seen[chat][0] for chat in chats)
    rows = await _rows(herald, "fix")
    assert {row["correction_outcome"] for row in rows} == {"corrected"}
    async with herald.emulator() as emulator:
        assert len(await emulator.messages(token=TOKEN, method="editMessageText")) == 2 * AUDIENCE


async def test_a_caption_correction_and_sends_after_it_go_out_corrected(herald: Herald) -> None:
    await herald.seed(herald.subscribers(AUDIENCE))
    chats = [s.chat_id for s in herald.subscribers(AUDIENCE)]
    herald.apply(
        "photo",
        {
            "content": {
                "text": "Sael",
                "media": {"type": "photo", "url": "https://files.example/a.jpg"},
                "buttons": KEYBOARD,
            },
            "audience": {"subscribers": {}},
            "paused": True,
        },
    )
    await herald.wait_condition("photo", "Paused")
    # Set before anything was sent: every message goes out corrected, nothing is edited.
    _patch(herald, "photo", {"correction": {"caption": "Sale"}, "paused": False})
    await herald.wait_condition("photo", "Complete")
    await _all_corrected(herald, "photo")
    seen = await _seen(herald, chats)
    assert all(seen[chat][0]["caption"] == "Sale" for chat in chats)
    async with herald.emulator() as emulator:
        assert await emulator.messages(token=TOKEN, method="editMessageCaption") == []
    _patch(herald, "photo", {"correction": {"caption": "Sale!"}})
    await _all_corrected(herald, "photo")
    seen = await _seen(herald, chats)
    assert all(seen[chat][0]["caption"] == "Sale!" for chat in chats)
    assert all(seen[chat][0]["reply_markup"]["inline_keyboard"] == KEYBOARD for chat in chats)
    assert all("photo" in seen[chat][0] for chat in chats)
