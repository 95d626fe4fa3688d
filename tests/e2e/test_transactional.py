"""Transactional messages through the whole system: two herald-api processes, the operator,
the senders and the emulator, with an application's own ServiceAccount token."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import aiohttp
import pytest

from herald.dev.systems import BOT_SECRET, TOKEN, LocalSystem

# Two processes: whichever answers, the same message.
pytestmark = pytest.mark.herald_apis(2)


def messages_url(herald: LocalSystem, index: int = 0) -> str:
    namespace = herald.kubectl.namespace
    return f"{herald.api_urls[index]}/v1/namespaces/{namespace}/bots/{BOT_SECRET}/messages"


async def post(
    session: aiohttp.ClientSession,
    url: str,
    token: str,
    key: str,
    body: dict[str, Any],
    *,
    wait: int | None = None,
) -> tuple[int, dict[str, Any]]:
    async with session.post(
        url,
        json=body,
        params={"wait": str(wait)} if wait is not None else None,
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
    ) as response:
        return response.status, await response.json()


async def final_state(
    session: aiohttp.ClientSession, url: str, token: str, within: float = 60
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        async with session.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
            assert response.status == 200, await response.text()
            view: dict[str, Any] = await response.json()
        if view["state"] != "pending":
            return view
        assert loop.time() < deadline, f"still pending after {within:.0f}s: {view}"
        await asyncio.sleep(0.2)


async def wait_for_bot(herald: LocalSystem, session: aiohttp.ClientSession, token: str) -> None:
    """Until herald-api knows the Bot (the operator verified it and wrote its record)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    for index in range(len(herald.api_urls)):
        while True:
            async with session.get(
                f"{messages_url(herald, index)}/{uuid.uuid4()}",
                headers={"Authorization": f"Bearer {token}"},
            ) as response:
                # An unknown message of a known Bot is 404 too: tell them by the detail.
                detail = (await response.json()).get("detail", "")
            if str(detail).startswith("no message"):
                break
            assert loop.time() < deadline, f"herald-api {index} never saw the Bot: {detail}"
            await asyncio.sleep(0.3)


async def test_fifty_concurrent_posts_of_one_key_on_two_processes_send_one_message(
    herald: LocalSystem,
) -> None:
    token = await asyncio.to_thread(herald.app_token)
    body = {"chatId": 60_001, "content": {"text": "Your order has shipped"}}
    async with aiohttp.ClientSession() as session:
        await wait_for_bot(herald, session, token)
        answers = await asyncio.gather(
            *(
                post(session, messages_url(herald, i % 2), token, "order-42-shipped", body)
                for i in range(50)
            )
        )
        assert {status for status, _ in answers} <= {200, 202}, answers[:3]
        ids = {answer["id"] for _, answer in answers}
        assert len(ids) == 1
        (message_id,) = ids
        view = await final_state(session, f"{messages_url(herald, 1)}/{message_id}", token)
        # Retried after delivery, on the other process: the same message, not a second one.
        status, again = await post(
            session, messages_url(herald, 0), token, "order-42-shipped", body
        )
    assert view["state"] == "delivered", view
    assert (status, again["id"], again["state"]) == (200, message_id, "delivered")
    rows = await herald.sql("SELECT id, state, telegram_message_id FROM messages")
    assert [(str(r["id"]), r["state"]) for r in rows] == [(message_id, "delivered")]
    async with herald.emulator() as emulator:
        sent = [m for m in await emulator.messages(token=TOKEN) if m.sending]
    assert [(m.chat_id, m.payload["text"]) for m in sent] == [(60_001, "Your order has shipped")]
    assert view["messageId"] == sent[0].message_id == rows[0]["telegram_message_id"]


async def test_transactional_messages_go_first_within_a_full_rate_broadcast(
    herald: LocalSystem,
) -> None:
    audience = 300
    await herald.seed(herald.subscribers(audience, start=10_001))
    token = await asyncio.to_thread(herald.app_token)
    herald.apply(
        "busy",
        {
            "content": {"text": "Campaign"},
            "audience": {"subscribers": {}},
            "rate": {"messagesPerSecond": 30},
        },
    )
    # Half to chats outside the audience, half to chats the broadcast also reaches: Telegram's
    # one message per second per chat holds across both.
    chats = [90_001 + i for i in range(10)] + [10_201 + i for i in range(10)]
    async with aiohttp.ClientSession() as session:
        await wait_for_bot(herald, session, token)
        async with herald.emulator() as emulator:
            deadline = asyncio.get_running_loop().time() + 60
            while (await emulator.summary(token=TOKEN)).total < 60:
                assert asyncio.get_running_loop().time() < deadline, "the broadcast never sent"
                await asyncio.sleep(0.2)
        answers = await asyncio.gather(
            *(
                post(
                    session,
                    messages_url(herald, i % 2),
                    token,
                    f"notice-{chat}",
                    {"chatId": chat, "content": {"text": f"Notice for {chat}"}},
                    wait=15,
                )
                for i, chat in enumerate(chats)
            )
        )
    assert [(status, answer["state"]) for status, answer in answers] == [(200, "delivered")] * len(
        chats
    )
    await herald.wait_condition("busy", "Complete", within=90)
    async with herald.emulator() as emulator:
        summary = await emulator.summary(token=TOKEN)
        sent = [m for m in await emulator.messages(token=TOKEN) if m.sending]
    notices = Counter(m.chat_id for m in sent if m.payload["text"].startswith("Notice"))
    assert notices == Counter(chats)
    assert summary.total == audience + len(chats)
    assert summary.max_per_second[TOKEN] <= 30
    assert summary.too_many_requests.get(TOKEN, 0) == 0
    campaign = Counter(m.chat_id for m in sent if m.payload["text"] == "Campaign")
    assert set(campaign.values()) == {1} and len(campaign) == audience
