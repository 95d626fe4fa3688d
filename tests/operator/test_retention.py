"""Ledger retention on a real Postgres: old finished ledgers go in batches, with their clicks
and counts kept; recent, running and still-live unfinished broadcasts keep every row."""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from herald.operator import ledgers, retaining
from herald.operator.metrics import Metrics
from herald.operator.planning import AmendCounts, LedgerFacts
from herald.operator.retaining import Candidate, abandoned, due
from herald.operator.settings import LedgerSettings

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
BOT = "4242"


@pytest.fixture
async def db(database: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database)
    try:
        yield connection
    finally:
        await connection.close()


async def _broadcast(
    db: asyncpg.Connection,
    *,
    states: dict[str, int],
    created: datetime,
    completed: datetime | None,
    finished: datetime | None = None,
    clicks: int = 0,
    namespace: str = "marketing",
) -> str:
    """A materialised broadcast with ``states`` rows; terminal rows finished at ``finished``
    (default: at completion, else at creation)."""
    uid = str(uuid.uuid4())
    total = sum(states.values())
    await db.execute(
        "INSERT INTO broadcasts (uid, namespace, name, bot_id, total, materialised_at, "
        "published_at, completed_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $6)",
        uid,
        namespace,
        f"b-{uid[:8]}",
        BOT,
        total,
        created,
        completed,
    )
    at = finished or completed or created
    chat = 1
    for state, n in states.items():
        terminal = state not in ("pending", "claimed", "sending")
        await db.executemany(
            "INSERT INTO deliveries (broadcast_uid, chat_id, state, created_at, finished_at, "
            "claimed_at) VALUES ($1, $2, $3, $4, $5, $6)",
            [
                (
                    uid,
                    chat + i,
                    state,
                    created,
                    at if terminal else None,
                    at if state != "pending" else None,
                )
                for i in range(n)
            ],
        )
        chat += n
    await db.executemany(
        "INSERT INTO clicks (broadcast_uid, chat_id, callback, pressed_at) VALUES ($1, $2, $3, $4)",
        [(uid, i + 1, "yes", at) for i in range(clicks)],
    )
    return uid


async def _message(
    db: asyncpg.Connection, *, chat_id: int, state: str, created: datetime, callback: str | None
) -> uuid.UUID:
    id_ = uuid.uuid4()
    await db.execute(
        "INSERT INTO messages (id, namespace, bot, bot_id, idempotency_key, fingerprint, "
        "chat_id, content, state, created_at, callback_url, callback_state) "
        "VALUES ($1, 'shop', 'shop-bot', $2, $3, '\\x00', $4, '{}', $5, $6, $7, $8)",
        id_,
        BOT,
        str(id_),
        chat_id,
        state,
        created,
        "https://example.test/cb" if callback else None,
        callback,
    )
    return id_


async def _rows(db: asyncpg.Connection, table: str, uid: str) -> int:
    return int(await db.fetchval(f"SELECT count(*) FROM {table} WHERE broadcast_uid = $1", uid))


class _Steps:
    """Counts the statements a run makes, by what they do."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, what: str) -> AbstractAsyncContextManager[None]:
        self.calls.append(what)
        return contextlib.nullcontext()


async def test_old_finished_ledgers_go_in_batches_and_the_rest_stays(
    db: asyncpg.Connection,
) -> None:
    old = await _broadcast(
        db,
        states={"delivered": 9, "failed": 2, "blocked": 1, "uncertain": 1},
        created=NOW - 40 * DAY,
        completed=NOW - 39 * DAY,
        clicks=4,
    )
    recent = await _broadcast(
        db, states={"delivered": 5}, created=NOW - 40 * DAY, completed=NOW - 2 * DAY
    )
    # Still sending after 40 days (a slow, huge broadcast): old terminal rows, pending work.
    running = await _broadcast(
        db,
        states={"delivered": 6, "pending": 3, "sending": 1},
        created=NOW - 40 * DAY,
        completed=None,
        finished=NOW - 35 * DAY,
    )
    # Deleted before it finished, long ago: its pending rows will never be sent.
    abandoned = await _broadcast(
        db, states={"delivered": 2, "pending": 2}, created=NOW - 50 * DAY, completed=None
    )
    # Another operator's namespace: left to it.
    elsewhere = await _broadcast(
        db,
        states={"delivered": 3},
        created=NOW - 40 * DAY,
        completed=NOW - 39 * DAY,
        namespace="other-team",
    )
    old_message = await _message(
        db, chat_id=1, state="delivered", created=NOW - 31 * DAY, callback="done"
    )
    owed_callback = await _message(
        db, chat_id=2, state="failed", created=NOW - 31 * DAY, callback="pending"
    )
    still_open = await _message(
        db, chat_id=3, state="pending", created=NOW - 31 * DAY, callback=None
    )
    fresh_message = await _message(
        db, chat_id=4, state="delivered", created=NOW - DAY, callback=None
    )
    before = _unamendable(await ledgers.ledger_facts(db, old))
    steps = _Steps()

    removed = await retaining.remove_expired(
        db,
        now=NOW,
        days=30,
        batch=3,
        live_uids={old, recent, running, elsewhere},  # abandoned is gone
        namespaces=("marketing",),
        step=steps,
    )

    assert (removed.ledgers, removed.deliveries, removed.clicks, removed.messages) == (
        2,
        13 + 4,
        4,
        1,
    )
    # At 3 a time, each its own transaction: 13 rows and 4 clicks of the old one, 5 and 2
    # statements; 4 rows and no clicks of the abandoned one, 2 and 1 (the empty last batch).
    assert steps.calls.count("removing a batch of expired ledger rows") == 5 + 2 + 2 + 1
    for uid in (old, abandoned):
        assert await _rows(db, "deliveries", uid) == 0
        assert await _rows(db, "clicks", uid) == 0
    assert await _rows(db, "deliveries", recent) == 5
    assert await _rows(db, "deliveries", running) == 10
    assert await _rows(db, "deliveries", elsewhere) == 3
    left = {r["id"] for r in await db.fetch("SELECT id FROM messages")}
    assert left == {owed_callback, still_open, fresh_message}
    assert old_message not in left
    # The operator's view of the removed ledger is the one it had: nothing to plan again.
    assert await ledgers.ledger_facts(db, old) == before
    assert await ledgers.click_counts(db, old) == {"yes": 4}
    marked = await db.fetchval("SELECT ledger_removed_at FROM broadcasts WHERE uid = $1", old)
    assert marked is not None

    # A press after the removal (the message is still in the chat) goes on the next run.
    await db.execute(
        "INSERT INTO clicks (broadcast_uid, chat_id, callback) VALUES ($1, 77, 'yes')", old
    )
    # A second run finds nothing more, and keeps the counts it took the first time.
    again = await retaining.remove_expired(
        db,
        now=NOW,
        days=30,
        batch=3,
        live_uids={old, recent, running, elsewhere},
        namespaces=("marketing",),
    )
    assert (again.ledgers, again.deliveries, again.clicks, again.messages) == (0, 0, 1, 0)
    assert await _rows(db, "clicks", old) == 0
    assert await ledgers.ledger_facts(db, old) == before


async def test_unlisted_broadcasts_keep_unfinished_ledgers(db: asyncpg.Connection) -> None:
    """When the Broadcasts could not be listed, no unfinished ledger may go: its Broadcast
    may be live."""
    unfinished = await _broadcast(db, states={"pending": 2}, created=NOW - 50 * DAY, completed=None)
    removed = await retaining.remove_expired(db, now=NOW, days=30, batch=10, live_uids=None)
    assert removed.ledgers == 0
    assert await _rows(db, "deliveries", unfinished) == 2


async def test_a_run_stopped_half_way_resumes_with_the_counts_it_kept(
    db: asyncpg.Connection,
) -> None:
    uid = await _broadcast(
        db, states={"delivered": 7}, created=NOW - 40 * DAY, completed=NOW - 39 * DAY
    )
    before = _unamendable(await ledgers.ledger_facts(db, uid))

    class Stop(Exception):
        pass

    def stop_after_two(what: str) -> AbstractAsyncContextManager[None]:
        stop_after_two.n += 1  # type: ignore[attr-defined]
        if stop_after_two.n > 2:  # type: ignore[attr-defined]
            raise Stop
        return contextlib.nullcontext()

    stop_after_two.n = 0  # type: ignore[attr-defined]
    with pytest.raises(Stop):
        await retaining.remove_ledger(
            db, uid, batch=3, removed=retaining.Removed(), step=stop_after_two
        )
    assert await _rows(db, "deliveries", uid) == 4  # one batch went
    assert await ledgers.ledger_facts(db, uid) == before

    removed = await retaining.remove_expired(db, now=NOW, days=30, batch=3, live_uids=set())
    assert (removed.ledgers, removed.deliveries) == (1, 4)
    assert await ledgers.ledger_facts(db, uid) == before


def test_metrics_count_rows_removed() -> None:
    metrics = Metrics()
    metrics.retained(ledgers=2, deliveries=17, clicks=4, messages=1)
    metrics.retained(ledgers=0, deliveries=0, clicks=0, messages=3)
    value = metrics.registry.get_sample_value
    assert value("herald_operator_retention_removed_ledgers_total") == 2
    assert value("herald_operator_retention_removed_rows_total", {"table": "deliveries"}) == 17
    assert value("herald_operator_retention_removed_rows_total", {"table": "clicks"}) == 4
    assert value("herald_operator_retention_removed_rows_total", {"table": "messages"}) == 4


def test_retention_is_off_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    assert LedgerSettings().retention_days is None
    monkeypatch.setenv("HERALD_LEDGER_RETENTION_DAYS", "90")
    assert LedgerSettings().retention_days == 90
    monkeypatch.setenv("HERALD_LEDGER_RETENTION_DAYS", "0")
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        LedgerSettings()


CUT = NOW - 30 * DAY


def _c(uid: str, *, completed: datetime | None, last: datetime, ns: str = "a") -> Candidate:
    return Candidate(uid=uid, namespace=ns, completed_at=completed, last_change=last)


@pytest.mark.parametrize(
    ("candidate", "live", "namespaces", "goes"),
    [
        pytest.param(
            _c("x", completed=CUT - DAY, last=CUT - DAY), {"x"}, (), True, id="completed-old-live"
        ),
        pytest.param(
            _c("x", completed=CUT + DAY, last=CUT + DAY), set(), (), False, id="completed-recent"
        ),
        pytest.param(
            _c("x", completed=None, last=CUT - DAY), set(), (), True, id="unfinished-gone-quiet"
        ),
        pytest.param(
            _c("x", completed=None, last=CUT - DAY), {"x"}, (), False, id="unfinished-live"
        ),
        pytest.param(
            _c("x", completed=None, last=CUT + DAY),
            set(),
            (),
            False,
            id="unfinished-gone-recent-change",
        ),
        pytest.param(
            _c("x", completed=None, last=CUT - DAY), None, (), False, id="unfinished-unlisted"
        ),
        pytest.param(
            _c("x", completed=CUT - DAY, last=CUT - DAY), None, (), True, id="completed-unlisted"
        ),
        pytest.param(
            _c("x", completed=CUT - DAY, last=CUT - DAY, ns="b"),
            set(),
            ("a",),
            False,
            id="other-namespace",
        ),
        pytest.param(
            _c("x", completed=CUT - DAY, last=CUT - DAY, ns="a"),
            set(),
            ("a",),
            True,
            id="watched-namespace",
        ),
    ],
)
def test_due(
    candidate: Candidate, live: set[str] | None, namespaces: tuple[str, ...], goes: bool
) -> None:
    chosen = due([candidate], cut=CUT, live_uids=live, namespaces=namespaces)
    assert chosen == (["x"] if goes else [])


def test_only_unfinished_broadcasts_that_are_gone_have_their_ledger_read() -> None:
    done = _c("done", completed=CUT - DAY, last=CUT - DAY)
    live = _c("live", completed=None, last=CUT - DAY)
    gone = _c("gone", completed=None, last=CUT - DAY)
    foreign = _c("foreign", completed=None, last=CUT - DAY, ns="b")
    everyone = [done, live, gone, foreign]
    assert abandoned(everyone, live_uids={"done", "live"}, namespaces=("a",)) == [gone]
    assert abandoned(everyone, live_uids=None, namespaces=("a",)) == []
    # Not read yet: it cannot go.
    unread = Candidate(uid="gone", namespace="a", completed_at=None)
    assert due([unread], cut=CUT, live_uids=set(), namespaces=()) == []


def _unamendable(facts: LedgerFacts | None) -> LedgerFacts | None:
    """The facts as they read once the rows are gone: the same counts, and no message left
    to recall or correct (their ids went with the rows)."""
    assert facts is not None
    return dataclasses.replace(facts, amends=AmendCounts())
