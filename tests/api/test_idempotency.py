"""One key, one message: however many POSTs, on however many processes; the queue's bound;
a message whose queueing was lost is queued again; old keys expire."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import nats

from herald.core import subjects
from herald.core.envelopes import MessageWork, decode

Herald = Any  # the fixtures' classes live in conftest.py
Cluster = Any

ORDER = {"chatId": 4242, "content": {"text": "Your order has shipped"}}


async def test_fifty_concurrent_posts_of_one_key_on_two_processes_make_one_message(
    herald: Herald, cluster: Cluster
) -> None:
    await herald.put_bot("shop-bot")
    token = await cluster.account("shop", bots=["shop-bot"])
    async with herald.processes(2) as urls:
        answers = await asyncio.gather(
            *(
                herald.post("shop-bot", ORDER, token=token, key="order-1", url=urls[i % 2])
                for i in range(50)
            )
        )
        assert {status for status, _, _ in answers} == {202}
        ids = {body["id"] for _, body, _ in answers}
        assert len(ids) == 1
        assert len(await herald.rows()) == 1
        assert await herald.queued() == 1
    # SIGTERM is a clean stop.
    assert herald.exit_codes == [0, 0]


async def test_a_bot_over_its_bound_is_429_with_retry_after(
    herald: Herald, cluster: Cluster
) -> None:
    await herald.put_bot("shop-bot")
    token = await cluster.account("shop", bots=["shop-bot"])
    async with herald.running(queue_bound=3) as api:
        taken = []
        for n in range(3):
            status, body, _ = await api.post("shop-bot", ORDER, token=token, key=f"k{n}")
            assert status == 202
            taken.append(body["id"])

        status, body, headers = await api.post("shop-bot", ORDER, token=token, key="k3")
        assert status == 429
        assert headers["Retry-After"] == "1"
        assert "HERALD_API_QUEUE_BOUND" in body["detail"]
        # A retry of a message already taken is answered as ever.
        status, body, _ = await api.post("shop-bot", ORDER, token=token, key="k0")
        assert status == 202
        assert body["id"] == taken[0]

        # Once one is sent, there is room for one more, as soon as the count herald-api
        # keeps (at most a second old) sees it; a refused POST takes nothing meanwhile.
        await api.deliver(taken[1])
        deadline = asyncio.get_running_loop().time() + 10
        while (await api.post("shop-bot", ORDER, token=token, key="k3"))[0] == 429:
            assert asyncio.get_running_loop().time() < deadline, "the bound never made room"
            await asyncio.sleep(0.2)
        assert len(await api.rows()) == 4


async def test_a_message_taken_but_never_queued_is_queued_again(herald: Herald) -> None:
    """A replica that died between its insert and its publish leaves a pending row and
    nothing on the stream: another replica's periodic round queues it."""
    await herald.put_bot("shop-bot")
    async with herald.running(republish_seconds=1.0) as api:
        message_id = uuid.uuid4()
        await api.sql(
            """
            INSERT INTO messages (id, namespace, bot, bot_id, idempotency_key, fingerprint,
                                  chat_id, content)
            VALUES ($1, $2, 'shop-bot', '700001', 'lost', '\\x00', 4242,
                    '{"text": "Your order has shipped"}')
            """,
            message_id,
            api.namespace,
        )

        async def queued() -> bool:
            return bool(await api.queued())

        await api.until(queued, "the lost message queued")
        connection = await nats.connect(api.nats_url)
        try:
            raw = await connection.jetstream().get_msg(subjects.MESSAGES_STREAM, seq=1)
        finally:
            await connection.close()
        assert raw.subject == subjects.message_subject("700001")
        assert raw.headers is not None
        assert raw.headers["Nats-Msg-Id"] == str(message_id)
        work = decode(MessageWork, raw.data or b"")
        assert (work.id, work.bot, work.chat_id) == (str(message_id), "shop-bot", 4242)
        assert work.content.text == "Your order has shipped"
        assert await api.queued() == 1
        assert await api.samples("herald_api_published_total") == [
            ({"result": "ok"}, 1.0),
            ({"result": "republished"}, 1.0),
        ]


async def test_finished_messages_older_than_the_keys_lifetime_are_deleted(
    herald: Herald,
) -> None:
    await herald.put_bot("shop-bot")
    rows = [
        ("old-delivered", "delivered", 25, None),
        ("old-failed", "failed", 25, None),
        ("old-pending", "pending", 25, None),  # not finished: kept
        ("old-calling-back", "delivered", 25, "pending"),  # its callback is due
        ("recent", "delivered", 1, None),
    ]
    for key, state, age, callback in rows:
        await herald.sql(
            """
            INSERT INTO messages (id, namespace, bot, bot_id, idempotency_key, fingerprint,
                                  chat_id, content, state, created_at, callback_url,
                                  callback_state)
            VALUES ($1, $2, 'shop-bot', '700001', $3, '\\x00', 4242, '{"text": "hi"}', $4,
                    now() - make_interval(hours => $5), $6, $7)
            """,
            uuid.uuid4(),
            herald.namespace,
            key,
            state,
            age,
            None if callback is None else "https://shop.example/cb",
            callback,
        )
    async with herald.running(idempotency_hours=24) as api:

        async def expired() -> bool:
            return len(await api.rows()) == 3

        await api.until(expired, "the old finished messages deleted")
        assert {row["idempotency_key"] for row in await api.rows()} == {
            "old-pending",
            "old-calling-back",
            "recent",
        }
        [(_, deleted)] = await api.samples("herald_api_expired_messages_total")
        assert deleted == 2
