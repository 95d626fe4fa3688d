"""Audience materialisation against a real Postgres: one statement, deduplicated, idempotent."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping

import asyncpg

from herald.core.audiences import Audience
from herald.operator import audiences, publishing


async def _ledger(db: asyncpg.Connection, uid: str) -> list[int]:
    rows = await db.fetch(
        "SELECT chat_id FROM deliveries WHERE broadcast_uid = $1 ORDER BY chat_id", uid
    )
    return [r["chat_id"] for r in rows]


async def test_union_of_selectors_once(database: str) -> None:
    db = await asyncpg.connect(database)
    try:
        await db.execute(
            "INSERT INTO subscribers (bot_id, chat_id, language_code, tags, is_active) VALUES "
            "('1', 1, 'en', '{beta}', true), ('1', 2, 'en-gb', '{}', true), "
            "('1', 3, 'ru', '{beta}', true), ('1', 4, 'en', '{beta}', false), "
            "('1', 5, 'de', '{vip}', true), ('1', 6, 'de', '{}', true)"
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
            "INSERT INTO subscribers (bot_id, chat_id, is_active) "
            "VALUES ('1', 10, true), ('1', 11, false), ('1', 12, true)"
        )
        uid = str(uuid.uuid4())
        audience = Audience.model_validate({"subscribers": {}})
        await audiences.materialise(
            db, uid=uid, namespace="ns", name="b", bot_id="1", audience=audience
        )
        assert await _ledger(db, uid) == [10, 12]
    finally:
        await db.close()


# Two bots with overlapping subscriber bases. Bot A ("111"): 1, 2, 3 active, 4 blocked it.
# Bot B ("222"): 2, 4 and 5 active, 3 blocked it; 1 never started it.
_TWO_BOTS = (
    "INSERT INTO subscribers (bot_id, chat_id, language_code, tags, is_active) VALUES "
    "('111', 1, 'en', '{beta}', true), ('111', 2, 'en', '{}', true), "
    "('111', 3, 'ru', '{beta}', true), ('111', 4, 'en', '{beta}', false), "
    "('222', 2, 'ru', '{beta}', true), ('222', 3, 'en', '{beta}', false), "
    "('222', 4, 'en', '{}', true), ('222', 5, 'en', '{beta}', true)"
)


async def _audience_of(
    db: asyncpg.Connection, bot_id: str, audience: Mapping[str, object]
) -> list[int]:
    uid = str(uuid.uuid4())
    await audiences.materialise(
        db,
        uid=uid,
        namespace="ns",
        name=f"b-{uid[:8]}",
        bot_id=bot_id,
        audience=Audience.model_validate(audience),
    )
    return await _ledger(db, uid)


async def test_each_bot_reaches_its_own_subscribers_only(database: str) -> None:
    db = await asyncpg.connect(database)
    try:
        await db.execute(_TWO_BOTS)
        assert await _audience_of(db, "111", {"subscribers": {}}) == [1, 2, 3]
        assert await _audience_of(db, "222", {"subscribers": {}}) == [2, 4, 5]
        # Language and tags are what each bot knows of the user.
        assert await _audience_of(db, "111", {"subscribers": {"languages": ["en"]}}) == [1, 2]
        assert await _audience_of(db, "222", {"subscribers": {"languages": ["en"]}}) == [4, 5]
        assert await _audience_of(db, "222", {"subscribers": {"tags": ["beta"]}}) == [2, 5]
        # A bot nobody started has no subscribers, whoever started the others.
        assert await _audience_of(db, "333", {"subscribers": {}}) == []
    finally:
        await db.close()


async def test_blocked_is_excluded_for_the_bot_blocked_only(database: str) -> None:
    db = await asyncpg.connect(database)
    try:
        await db.execute(_TWO_BOTS)
        listed = {"chatIds": [1, 2, 3, 4, 5, 6]}
        # 4 blocked A, 3 blocked B; 6 is nobody's subscriber; explicit ids reach the others.
        assert await _audience_of(db, "111", listed) == [1, 2, 3, 5, 6]
        assert await _audience_of(db, "222", listed) == [1, 2, 4, 5, 6]
    finally:
        await db.close()


async def test_a_segment_of_chat_ids_alone_is_the_list_of_the_bot_naming_it(
    database: str,
) -> None:
    db = await asyncpg.connect(database)
    try:
        await db.execute(_TWO_BOTS)
        # A view as segments were before bots had their own subscribers: chat_id only.
        await db.execute(
            "CREATE VIEW herald_segment_poll AS "
            "SELECT chat_id FROM (VALUES (3::bigint), (4), (6)) AS v(chat_id)"
        )
        audience = {"segment": "poll"}
        assert not await audiences.segment_has_bot_id(db, Audience.model_validate(audience))
        assert await _audience_of(db, "111", audience) == [3, 6]
        assert await _audience_of(db, "222", audience) == [4, 6]
    finally:
        await db.close()


async def test_a_segment_with_bot_ids_gives_each_bot_its_rows(database: str) -> None:
    db = await asyncpg.connect(database)
    try:
        await db.execute(_TWO_BOTS)
        # An application's table for several bots, its bot id a number, as getMe gives it.
        await db.execute(
            "CREATE TABLE poll_answers (bot bigint, chat bigint); "
            "INSERT INTO poll_answers VALUES (111, 1), (111, 4), (111, 7), (222, 2), (222, 3); "
            "CREATE VIEW herald_segment_unfinished_poll AS "
            "SELECT chat AS chat_id, bot AS bot_id FROM poll_answers"
        )
        audience = {"segment": "unfinished-poll"}
        assert await audiences.segment_has_bot_id(db, Audience.model_validate(audience))
        # 4 blocked A and 3 blocked B: excluded still.
        assert await _audience_of(db, "111", audience) == [1, 7]
        assert await _audience_of(db, "222", audience) == [2]
        assert await _audience_of(db, "333", audience) == []
    finally:
        await db.close()


async def test_a_segment_over_the_subscriber_table_with_its_bot_id(database: str) -> None:
    db = await asyncpg.connect(database)
    try:
        await db.execute(_TWO_BOTS)
        # The shape docs/semantics.md suggests for a segment of Herald's own subscribers.
        await db.execute(
            "CREATE VIEW herald_segment_beta AS "
            "SELECT bot_id, chat_id FROM subscribers WHERE 'beta' = ANY(tags)"
        )
        assert await _audience_of(db, "111", {"segment": "beta"}) == [1, 3]
        assert await _audience_of(db, "222", {"segment": "beta"}) == [2, 5]
    finally:
        await db.close()


async def test_from_broadcast_reads_its_own_bots_ledger_only(database: str) -> None:
    db = await asyncpg.connect(database)
    try:
        await db.execute(_TWO_BOTS)
        source = str(uuid.uuid4())
        await audiences.materialise(
            db,
            uid=source,
            namespace="ns",
            name="first",
            bot_id="111",
            audience=Audience.model_validate({"subscribers": {}, "chatIds": [4, 9]}),
        )
        await db.execute(
            "UPDATE deliveries SET state = CASE chat_id WHEN 1 THEN 'delivered' "
            "WHEN 2 THEN 'failed' ELSE 'uncertain' END WHERE broadcast_uid = $1",
            source,
        )
        again = Audience.model_validate(
            {"fromBroadcast": {"name": "first", "states": ["failed", "uncertain"]}}
        )

        async def of(bot_id: str) -> list[int]:
            uid = str(uuid.uuid4())
            await audiences.materialise(
                db,
                uid=uid,
                namespace="ns",
                name=f"b-{uid[:8]}",
                bot_id=bot_id,
                audience=again,
                source_uid=source,
            )
            return await _ledger(db, uid)

        # 2 failed, 3 uncertain: active subscribers of bot A. 4 blocked A; 9 is no subscriber.
        assert await of("111") == [2, 3]
        # Bot B's recipients are never read from bot A's ledger, whatever the caller resolved.
        assert await of("222") == []
        counted = await audiences.count_languages(
            db, bot_id="111", audience=again, source_uid=source
        )
        assert counted == {"en": 1, "ru": 1}
    finally:
        await db.close()


async def test_count_languages_writes_nothing(database: str) -> None:
    db = await asyncpg.connect(database)
    try:
        await db.execute(_TWO_BOTS)
        audience = Audience.model_validate({"subscribers": {}, "chatIds": [1, 4, 77]})
        counted = await audiences.count_languages(db, bot_id="111", audience=audience)
        # 1, 2: en; 3: ru; 77: no subscriber, no language; 4 blocked bot A.
        assert counted == {"en": 2, "ru": 1, None: 1}
        assert await db.fetchval("SELECT count(*) FROM deliveries") == 0
    finally:
        await db.close()


async def test_a_large_audience_is_analysed_so_its_pages_are_read_by_the_key(
    database: str,
) -> None:
    db = await asyncpg.connect(database)
    try:
        count = audiences._ANALYZE_AFTER
        await db.execute(
            "INSERT INTO subscribers (bot_id, chat_id) SELECT '1', g FROM generate_series(1, $1) g",
            count,
        )
        uid = str(uuid.uuid4())
        audience = Audience.model_validate({"subscribers": {}})
        total = await audiences.materialise(
            db, uid=uid, namespace="ns", name="big", bot_id="1", audience=audience
        )
        assert total == count
        analysed = await db.fetchval(
            "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'deliveries'"
        )
        assert analysed is not None
        # The page query's plan walks the primary key from the cursor, not a sort of it all.
        await db.execute("SET plan_cache_mode = force_custom_plan")
        plan = await db.fetchval(
            "EXPLAIN (FORMAT JSON) " + publishing._PAGE.replace("$3", "1000"),
            uuid.UUID(uid),
            count // 2,
        )
        # Down the outer side from the top: nothing sorted before the first row comes out.
        node = json.loads(plan)[0]["Plan"]
        outer = [node["Node Type"]]
        while node.get("Plans"):
            node = next(p for p in node["Plans"] if p.get("Parent Relationship") != "Inner")
            outer.append(node["Node Type"])
        assert "Sort" not in outer
        assert node.get("Index Name") == "deliveries_pkey"
    finally:
        await db.close()
