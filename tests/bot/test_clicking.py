"""Presses of a broadcast's callback buttons: every one answered, each chat's first press of
a button counted and tagged once, a press after the Broadcast was deleted answered only."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from herald.telegram.rendering import callback_data

Harness = Any  # the fixture's class lives in conftest.py

VOTER = {"id": 3001, "is_bot": False, "first_name": "Vic", "language_code": "en"}
TIMEOUT = 20.0


def poll(name: str) -> str:
    return json.dumps(
        {
            "apiVersion": "herald.dev/v1alpha1",
            "kind": "Broadcast",
            "metadata": {"name": name},
            "spec": {
                "botRef": {"name": "herald-bot"},
                "content": {
                    "text": "Coming on Friday?",
                    "buttons": [
                        [
                            {
                                "text": "Yes",
                                "callback": "yes",
                                "answer": "See you!",
                                "tag": "voted-yes",
                            },
                            {"text": "No", "callback": "no", "tag": "voted-no"},
                        ]
                    ],
                },
                "audience": {"subscribers": {}},
                "paused": True,
            },
        }
    )


async def press(h: Harness, user: dict[str, Any], data: str) -> str:
    query_id = f"q{next(h._ids)}"
    query = {
        "id": query_id,
        "from": user,
        "chat_instance": "ci",
        "data": data,
        "message": {
            "message_id": next(h._ids),
            "date": int(time.time()),
            "chat": {"id": user["id"], "type": "private", "first_name": user["first_name"]},
            "from": {"id": 424242, "is_bot": True, "first_name": "Herald"},
            "text": "Coming on Friday?",
        },
    }
    await h.emulator.inject_updates(h.TOKEN, [{"callback_query": query}])
    return query_id


async def answer_of(h: Harness, query_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        for call in await h.emulator.messages(token=h.TOKEN, method="answerCallbackQuery"):
            if call.payload.get("callback_query_id") == query_id:
                return dict(call.payload)
        await asyncio.sleep(0.05)
    raise AssertionError(f"press {query_id} was not answered within {TIMEOUT}s")


async def test_presses_are_answered_counted_once_and_tag_the_subscriber(
    herald_bot: Harness,
) -> None:
    h = herald_bot
    await h.k("create", "-f", "-", input=poll("poll"))
    uid = json.loads(await h.k("get", "broadcast", "poll", "-o", "json"))["metadata"]["uid"]
    # As the operator records a Broadcast it has seen, and the subscribers it sends to.
    await h.execute(
        "INSERT INTO broadcasts (uid, namespace, name, bot_id) VALUES ($1::uuid, $2, 'poll', $3)",
        uid,
        h.namespace,
        h.BOT_ID,
    )
    for user in (VOTER, h.USER):
        await h.execute(
            "INSERT INTO subscribers (bot_id, chat_id, first_name, tags)"
            " VALUES ($1, $2, $3, '{beta}')",
            h.BOT_ID,
            user["id"],
            user["first_name"],
        )

    first = await press(h, VOTER, callback_data(uid, "yes"))
    assert (await answer_of(h, first)).get("text") == "See you!"
    again = await press(h, VOTER, callback_data(uid, "yes"))
    assert (await answer_of(h, again)).get("text") == "See you!"
    other = await press(h, h.USER, callback_data(uid, "no"))
    assert "text" not in await answer_of(h, other)  # no answer text: answered silently
    unknown = await press(h, h.USER, callback_data(uid, "maybe"))
    assert "text" not in await answer_of(h, unknown)

    clicks = await h.fetchrow(
        "SELECT array_agg(callback || ':' || chat_id ORDER BY callback) AS clicks"
        " FROM clicks WHERE broadcast_uid = $1::uuid",
        uid,
    )
    assert clicks is not None
    assert clicks["clicks"] == [f"no:{h.USER['id']}", f"yes:{VOTER['id']}"]
    voter = await h.fetchrow(
        "SELECT tags FROM subscribers WHERE bot_id = $1 AND chat_id = $2", h.BOT_ID, VOTER["id"]
    )
    user = await h.fetchrow(
        "SELECT tags FROM subscribers WHERE bot_id = $1 AND chat_id = $2", h.BOT_ID, h.USER["id"]
    )
    assert voter is not None and user is not None
    assert (voter["tags"], user["tags"]) == (["beta", "voted-yes"], ["beta", "voted-no"])

    await h.k("delete", "broadcast", "poll", "--wait=false")
    await h.k("wait", "--for=delete", "broadcast/poll", "--timeout=30s")
    late = await press(h, h.USER, callback_data(uid, "yes"))
    assert "text" not in await answer_of(h, late)
    row = await h.fetchrow(
        "SELECT count(*) AS n FROM clicks WHERE broadcast_uid = $1::uuid AND chat_id = $2",
        uid,
        h.USER["id"],
    )
    assert row is not None and row["n"] == 1  # the late press was answered, not counted
