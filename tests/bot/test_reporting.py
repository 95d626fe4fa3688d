"""Completion records from the operator reach every admin, in the admin's language."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import nats

from herald.core import subjects
from herald.core.envelopes import CompletionRecord, encode

Harness = Any  # the fixture's class lives in conftest.py


async def _publish(url: str, payload: bytes) -> None:
    connection = await nats.connect(url)
    try:
        await connection.jetstream().publish(subjects.COMPLETIONS_SUBJECT, payload)
    finally:
        await connection.close()


async def test_completion_record_is_reported_to_every_admin(
    herald_bot: Harness, nats_url: str
) -> None:
    h = herald_bot
    # The Russian admin has started the bot, so the bot knows their language. The other
    # admin started another bot only, in Russian: this bot does not know them, and reports
    # to them in English.
    await h.execute(
        "INSERT INTO subscribers (bot_id, chat_id, language_code) VALUES ($1, $2, 'ru')",
        h.OTHER_BOT_ID,
        h.ADMIN["id"],
    )
    await h.send(h.ADMIN_RU, "/start")
    await h.reply(h.ADMIN_RU["id"], "Борис")
    started = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    record = CompletionRecord(
        uid="6b1d0c4e-0000-4000-8000-000000000001",
        namespace=h.namespace,
        name="sale",
        outcome="Complete",
        total=1000,
        delivered=970,
        blocked=20,
        failed=8,
        uncertain=2,
        started_at=started,
        completed_at=started + timedelta(minutes=3, seconds=5),
        clicks={"yes": 310, "no": 95},
    )

    # Garbage first: it is terminated and does not stop the consumer.
    await _publish(nats_url, b"\x01not a record")
    await _publish(nats_url, encode(record))

    english = await h.reply(h.ADMIN["id"], "Broadcast sale finished: Complete")
    assert "Delivered 970 of 1000 · blocked 20 · failed 8 · uncertain 2" in english.payload["text"]
    assert "Duration: 3m 05s" in english.payload["text"]
    assert english.payload["text"].endswith("\nClicks so far: no 95 · yes 310")
    russian = await h.reply(h.ADMIN_RU["id"], "Рассылка sale завершена")
    assert "Доставлено 970 из 1000" in russian.payload["text"]
    assert "Нажатия на кнопки к этому моменту: no 95 · yes 310" in russian.payload["text"]

    # Both records were settled: nothing is left for the durable consumer.
    connection = await nats.connect(nats_url)
    try:
        for _ in range(100):
            info = await connection.jetstream().consumer_info(
                subjects.EVENTS_STREAM, h.app.settings.bot.durable
            )
            if info.num_ack_pending == 0 and info.num_pending == 0:
                break
            await asyncio.sleep(0.05)
        assert info.num_ack_pending == 0
        assert info.num_pending == 0
    finally:
        await connection.close()


async def test_records_of_other_namespaces_are_not_reported(
    herald_bot: Harness, nats_url: str
) -> None:
    h = herald_bot
    other = CompletionRecord(
        uid="u1",
        namespace="elsewhere",
        name="x",
        outcome="Complete",
        total=1,
        delivered=1,
        blocked=0,
        failed=0,
        uncertain=0,
    )
    mine = other.model_copy(update={"namespace": h.namespace, "name": "mine"})
    await _publish(nats_url, encode(other))
    await _publish(nats_url, encode(mine))

    await h.reply(h.ADMIN["id"], "Broadcast mine finished")
    texts = [c.payload["text"] for c in await h.calls(h.ADMIN["id"], "sendMessage")]
    assert not any("Broadcast x" in text for text in texts)
