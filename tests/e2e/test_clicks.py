"""Callback buttons through the whole pipeline: the operator and a sender put the broadcast's
callback data on the wire, presses recorded as the bot records them (its Postgres store)
become status.clicks and the -o wide column, even after completion, and the tag they add
selects the audience of a second Broadcast exactly."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from herald.bot.postgres import PostgresSubscriberBook
from herald.core.broadcasts import Broadcast
from herald.core.contents import callback_buttons
from herald.dev.systems import BOT_ID, TOKEN
from herald.dev.systems import LocalSystem as Herald
from herald.telegram.rendering import parse_callback_data

POLL = {
    "text": "Coming on Friday?",
    "buttons": [
        [
            {"text": "Yes", "callback": "yes", "answer": "See you!", "tag": "voted-yes"},
            {"text": "No", "callback": "no"},
        ],
        [{"text": "Agenda", "url": "https://meetup.example/agenda"}],
    ],
}


async def complete(herald: Herald, name: str) -> None:
    waited = await asyncio.to_thread(
        herald.kubectl,
        "wait",
        "--for=condition=Complete",
        f"bc/{name}",
        "--timeout=90s",
        timeout=100,
    )
    assert "condition met" in waited.stdout


async def test_presses_become_status_clicks_and_tags_select_the_next_audience(
    herald: Herald,
) -> None:
    await herald.seed(herald.subscribers(6))
    herald.apply("poll", {"content": POLL, "audience": {"subscribers": {}}})
    await complete(herald, "poll")
    broadcast = Broadcast.model_validate(herald.get("poll"))
    uid = broadcast.metadata.uid
    assert uid is not None
    async with herald.emulator() as emulator:
        sent = await emulator.messages(token=TOKEN, method="sendMessage")
    assert len(sent) == 6
    keyboards = {m.chat_id: m.payload["reply_markup"]["inline_keyboard"] for m in sent}
    first_row = keyboards[10_001][0]
    presses = [parse_callback_data(b["callback_data"]) for b in first_row]
    assert [(p.broadcast_uid, p.callback) for p in presses if p] == [(uid, "yes"), (uid, "no")]
    assert keyboards[10_001][1] == [{"text": "Agenda", "url": "https://meetup.example/agenda"}]

    buttons = callback_buttons(broadcast.spec.content)
    pool = await asyncpg.create_pool(herald.database, min_size=1, max_size=2)
    try:
        store = PostgresSubscriberBook(pool).of(int(BOT_ID))
        pressed: list[tuple[int, str]] = [
            (10_001, "yes"),
            (10_002, "yes"),
            (10_001, "yes"),  # a repeat counts nothing
            (10_003, "no"),
            (10_002, "no"),
        ]
        new = [
            await store.record_click(
                broadcast_uid=uid, chat_id=chat, callback=button, tag=buttons[button].tag
            )
            for chat, button in pressed
        ]
    finally:
        await pool.close()
    assert new == [True, True, False, True, True]

    def counted() -> bool:
        status: dict[str, Any] = herald.status("poll")
        return status.get("clicks") == {"no": 2, "yes": 2} and status.get("totalClicks") == 4

    await herald.wait_for(counted, within=30, what="status.clicks of the finished poll")
    wide = herald.kubectl("get", "bc", "poll", "-o", "wide").stdout.splitlines()
    header, row = wide[0].split(), wide[1].split()
    assert row[header.index("CLICKS")] == "4"

    herald.apply(
        "follow-up",
        {
            "content": {"text": "Here is the address"},
            "audience": {"subscribers": {"tags": ["voted-yes"]}},
        },
    )
    await complete(herald, "follow-up")
    async with herald.emulator() as emulator:
        texts = await emulator.messages(token=TOKEN, method="sendMessage")
    follow_up = [m for m in texts if m.payload["text"] == "Here is the address"]
    reached = sorted(int(m.chat_id or 0) for m in follow_up)
    assert reached == [10_001, 10_002]
