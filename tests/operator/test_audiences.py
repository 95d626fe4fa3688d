"""Audience materialisation against a real Postgres: one statement, deduplicated, idempotent."""

from __future__ import annotations

import uuid

import asyncpg

from herald.core.audiences import Audience
from herald.operator import audiences


async def _ledger(db: asyncpg.Connection, uid: str) -> list[int]:
    rows = await db.fetch(
        "SELECT chat_id FROM deliveries WHERE broadcast_uid = $1 ORDER BY chat_id", uid
    )
    return [r["chat_id"] for r in rows]


async def test_union_of_selectors_once(database: str) -> None:
    db = await asyncpg.connect(database)
    try:
        await db.execute(
            "INSERT INTO subscribers (chat_id, language_code, tags, is_active) VALUES "
            "(1, 'en', '{beta}', true), (2, 'en-gb', '{}', true), (3, 'ru', '{beta}', true), "
            "(4, 'en', '{beta}', false), (5, 'de', '{vip}', true), (6, 'de', '{}', true)"
        )
        audience = Audience.model_validate(
            {
                "subscribers": {"languages": ["en"], "tags": ["beta", "vip"]},
                "segment": "unfinished-poll",
                "chatIds": [1, 4, 99],
            }
        )
        uid = str(uuid.uuid4())
        assert not await audiences.segment_exists(db, audience)
        await db.execute(
            "CREATE VIEW herald_segment_unfinished_poll AS "
            "SELECT chat_id FROM (VALUES (5::bigint), (6), (4)) AS v(chat_id)"
        )
        assert await audiences.segment_exists(db, audience)

        async def materialise() -> int:
            return await audiences.materialise(
                db, uid=uid, namespace="ns", name="b", bot_id="1", audience=audience
            )

        total = await materialise()
        # 1: en+beta (and listed); 2: en-gb has no tag; 3: ru; 4: inactive, even when listed
        # or in the segment; 5, 6: segment; 99: explicit, not a subscriber.
        assert await _ledger(db, uid) == [1, 5, 6, 99]
        assert total == 4
        again = await materialise()
        assert again == 4
        assert await _ledger(db, uid) == [1, 5, 6, 99]
        row = await db.fetchrow("SELECT total, materialised_at FROM broadcasts WHERE uid = $1", uid)
        assert row is not None
        assert row["total"] == 4
        assert row["materialised_at"] is not None
    finally:
        await db.close()


async def test_all_active_subscribers(database: str) -> None:
    db = await asyncpg.connect(database)
    try:
        await db.execute(
            "INSERT INTO subscribers (chat_id, is_active) "
            "VALUES (10, true), (11, false), (12, true)"
        )
        uid = str(uuid.uuid4())
        audience = Audience.model_validate({"subscribers": {}})
        await audiences.materialise(
            db, uid=uid, namespace="ns", name="b", bot_id="1", audience=audience
        )
        assert await _ledger(db, uid) == [10, 12]
    finally:
        await db.close()
