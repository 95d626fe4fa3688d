"""A message's end as herald-api tells it: `?wait=`, signed callbacks to a real local
receiver, metrics and probes.

The sender is not run here: each test plays its part by hand once the message is taken
(``deliver``: the row recorded as delivered, the outcome announced on
herald.outcomes.<bot id>); tests/e2e runs the real sender behind herald-api.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import nats
import pytest
from aiohttp import web

from herald.core import subjects
from herald.core.envelopes import BotTraffic, decode
from herald.dev.processes import free_port

Herald = Any  # the fixtures' classes live in conftest.py
Cluster = Any

SECRET = "callback-secret-of-shop-bot"
ORDER = {"chatId": 4242, "content": {"text": "Your order has shipped"}}
ROUTE = "/v1/namespaces/{namespace}/bots/{bot}/messages"


@dataclass
class Receiver:
    """An application's callback endpoint: answers each call with the next status of
    ``answers`` (the last one again once they run out), and keeps what came."""

    answers: list[int]
    url: str = ""
    calls: list[tuple[str, bytes]] = field(default_factory=list)

    async def take(self, request: web.Request) -> web.Response:
        self.calls.append((request.headers.get("Herald-Signature", ""), await request.read()))
        status = self.answers[min(len(self.calls), len(self.answers)) - 1]
        return web.Response(status=status)


@contextlib.asynccontextmanager
async def receiving(*answers: int) -> AsyncIterator[Receiver]:
    receiver = Receiver(list(answers))
    app = web.Application()
    app.router.add_post("/herald", receiver.take)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    receiver.url = f"http://127.0.0.1:{port}/herald"
    try:
        yield receiver
    finally:
        await runner.cleanup()


def verified(signature: str, body: bytes, *, secret: str = SECRET) -> bool:
    """How docs/transactional.md tells a receiver to check a callback."""
    parts = dict(part.split("=", 1) for part in signature.split(","))
    expected = hmac.new(
        secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


@pytest.fixture
async def token(herald: Herald, cluster: Cluster) -> str:
    await herald.put_bot("shop-bot", callback_secret=SECRET)
    return str(await cluster.account("shop", bots=["shop-bot"]))


async def test_wait_answers_200_with_the_final_state_once_it_is_reached(
    herald: Herald, token: str
) -> None:
    async with herald.running() as api:
        waiting = asyncio.ensure_future(
            api.post("shop-bot", ORDER, token=token, key="order-1", wait=20)
        )

        async def taken() -> bool:
            return len(await api.rows()) == 1

        await api.until(taken, "the message taken")
        [row] = await api.rows()
        await api.deliver(str(row["id"]))
        status, body, _ = await waiting
        assert status == 200
        assert body["id"] == str(row["id"])
        assert body["state"] == "delivered"
        assert body["messageId"] == 77
        assert body["sentAt"] is not None

        # A retry of a finished message answers its final state at once.
        status, again, _ = await api.post("shop-bot", ORDER, token=token, key="order-1")
        assert (status, again) == (200, body)


async def test_wait_answers_202_while_the_message_is_still_pending(
    herald: Herald, token: str
) -> None:
    async with herald.running() as api:
        status, body, _ = await api.post("shop-bot", ORDER, token=token, wait=0.5)
        assert status == 202
        assert body["state"] == "pending"


async def test_taking_a_message_writes_the_bots_traffic_record(herald: Herald, token: str) -> None:
    async with herald.running() as api:
        status, _, _ = await api.post("shop-bot", ORDER, token=token)
        assert status == 202
        connection = await nats.connect(api.nats_url)
        try:
            kv = await connection.jetstream().key_value(subjects.CONTROL_BUCKET)
            entry = await kv.get(subjects.bot_traffic_key("700001"))
        finally:
            await connection.close()
        traffic = decode(BotTraffic, entry.value or b"")
        assert (traffic.bot_id, traffic.namespace, traffic.name) == (
            "700001",
            api.namespace,
            "shop-bot",
        )


async def _callback_state(api: Any, message_id: str) -> tuple[str | None, int]:
    row = next(row for row in await api.rows() if str(row["id"]) == message_id)
    return row["callback_state"], row["callback_attempts"]


async def test_a_callback_is_signed_and_retried_until_the_receiver_takes_it(
    herald: Herald, token: str
) -> None:
    async with receiving(500, 500, 200) as receiver, herald.running() as api:
        body = {**ORDER, "callbackUrl": receiver.url}
        status, taken, _ = await api.post("shop-bot", body, token=token)
        assert status == 202
        await api.deliver(taken["id"])

        async def done() -> bool:
            return await _callback_state(api, taken["id"]) == ("done", 3)

        await api.until(done, "the callback taken on its third attempt")
        assert len(receiver.calls) == 3
        for signature, sent in receiver.calls:
            assert verified(signature, sent)
            assert not verified(signature, sent, secret="another secret")
            view = json.loads(sent)
            assert (view["id"], view["state"], view["messageId"]) == (
                taken["id"],
                "delivered",
                77,
            )
        results = {
            labels["result"]: value
            for labels, value in await api.samples("herald_api_callbacks_total")
        }
        assert results == {"retry": 2.0, "done": 1.0}


async def test_a_callback_fails_for_good_after_the_bounded_attempts(
    herald: Herald, token: str
) -> None:
    async with receiving(500) as receiver, herald.running(callback_attempts=3) as api:
        body = {**ORDER, "callbackUrl": receiver.url}
        _, taken, _ = await api.post("shop-bot", body, token=token)
        await api.deliver(taken["id"])

        async def failed() -> bool:
            return await _callback_state(api, taken["id"]) == ("failed", 3)

        await api.until(failed, "the callback failed after three attempts")
        assert len(receiver.calls) == 3
        # Nothing more is tried once it failed.
        [row] = await api.rows()
        assert row["callback_next_at"] is None


async def test_metrics_count_requests_by_route_and_time_messages_to_their_end(
    herald: Herald, token: str
) -> None:
    async with herald.running() as api:
        _, taken, _ = await api.post("shop-bot", ORDER, token=token)
        await api.post("shop-bot", ORDER, token=None)

        async def shown_open() -> bool:
            shown = await api.samples("herald_api_open_messages")
            return bool(shown == [({"namespace": api.namespace, "bot": "shop-bot"}, 1.0)])

        await api.until(shown_open, "one open message of shop-bot shown")
        requests = {
            (labels["route"], labels["method"], labels["code"]): value
            for labels, value in await api.samples("herald_api_requests_total")
        }
        assert requests[(ROUTE, "POST", "202")] == 1
        assert requests[(ROUTE, "POST", "401")] == 1

        await api.deliver(taken["id"])

        async def timed() -> bool:
            counted = await api.samples("herald_api_message_latency_seconds_count")
            return bool(counted == [({}, 1.0)])

        await api.until(timed, "the delivered message's latency observed")

        async def none_open() -> bool:
            return not await api.samples("herald_api_open_messages")

        await api.until(none_open, "no open message shown")


async def test_the_probes_say_live_and_ready(herald: Herald) -> None:
    async with herald.running() as api:
        assert await api.text("/livez") == (200, "ok\n")
        assert await api.text("/readyz") == (200, "ok\n")


async def test_on_sigterm_a_waiting_request_answers_at_once_and_the_process_exits_cleanly(
    herald: Herald, token: str
) -> None:
    async with herald.processes(1):
        waiting = asyncio.ensure_future(herald.post("shop-bot", ORDER, token=token, wait=30))

        async def taken() -> bool:
            return len(await herald.rows()) == 1

        await herald.until(taken, "the message taken")
        [process] = herald.started
        await asyncio.to_thread(process.stop)
        status, body, _ = await waiting
        assert status == 202
        assert body["state"] == "pending"
    assert herald.exit_codes == [0]
