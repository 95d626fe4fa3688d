"""`herald subscribers forget`: one chat of one bot erased from every table, in one
transaction; the same chat id of another bot, and other chats, untouched."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from herald.core.forgetting import UnknownBot, forget_chat
from herald.dev.kubectl import Kubectl
from herald.dev.systems import bot_manifest

SHOP, OTHER = "111", "222"
CHAT, NEIGHBOUR = 5001, 5002


@pytest.fixture
async def db(database: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database)
    try:
        yield connection
    finally:
        await connection.close()


async def _seed(db: asyncpg.Connection) -> dict[str, str]:
    """Both bots know both chats: subscribers, two broadcasts of the shop (one still
    sending), one of the other bot, clicks, transactional messages."""
    uids = {"shop-done": str(uuid.uuid4()), "shop-sending": str(uuid.uuid4())}
    uids["other"] = str(uuid.uuid4())
    for bot in (SHOP, OTHER):
        await db.executemany(
            "INSERT INTO subscribers (bot_id, chat_id, username) VALUES ($1, $2, $3)",
            [(bot, CHAT, "alice"), (bot, NEIGHBOUR, "bob")],
        )
    for key, uid in uids.items():
        bot = OTHER if key == "other" else SHOP
        await db.execute(
            "INSERT INTO broadcasts (uid, namespace, name, bot_id, total, materialised_at) "
            "VALUES ($1, 'shop', $2, $3, 2, now())",
            uid,
            key,
            bot,
        )
        state = "pending" if key == "shop-sending" else "delivered"
        await db.executemany(
            "INSERT INTO deliveries (broadcast_uid, chat_id, state) VALUES ($1, $2, $3)",
            [(uid, CHAT, state), (uid, NEIGHBOUR, state)],
        )
        await db.executemany(
            "INSERT INTO clicks (broadcast_uid, chat_id, callback) VALUES ($1, $2, 'yes')",
            [(uid, CHAT), (uid, NEIGHBOUR)],
        )
    for bot in (SHOP, OTHER):
        for chat in (CHAT, CHAT, NEIGHBOUR):
            id_ = uuid.uuid4()
            await db.execute(
                "INSERT INTO messages (id, namespace, bot, bot_id, idempotency_key, "
                "fingerprint, chat_id, content) VALUES ($1, 'shop', 'b', $2, $3, '\\x00', $4, "
                "'{}')",
                id_,
                bot,
                str(id_),
                chat,
            )
    return uids


async def _census(db: asyncpg.Connection) -> dict[str, list[tuple[str, int]]]:
    """(bot, chat) of every row, per table."""
    queries = {
        "subscribers": "SELECT bot_id, chat_id FROM subscribers",
        "deliveries": "SELECT b.bot_id, d.chat_id FROM deliveries d "
        "JOIN broadcasts b ON b.uid = d.broadcast_uid",
        "clicks": "SELECT b.bot_id, c.chat_id FROM clicks c "
        "JOIN broadcasts b ON b.uid = c.broadcast_uid",
        "messages": "SELECT bot_id, chat_id FROM messages",
    }
    return {
        table: sorted((r[0], r[1]) for r in await db.fetch(query))
        for table, query in queries.items()
    }


async def test_forget_removes_one_chat_of_one_bot_everywhere(db: asyncpg.Connection) -> None:
    uids = await _seed(db)
    before = await _census(db)

    gone = await forget_chat(db, bot_id=SHOP, chat_id=CHAT)

    assert (gone.subscribers, gone.deliveries, gone.clicks, gone.messages) == (1, 2, 2, 2)
    assert gone.broadcasts == 2
    after = await _census(db)
    # Exactly the shop's rows of that chat went; the other bot's rows of the same chat stay.
    for table, rows in before.items():
        assert after[table] == [r for r in rows if r != (SHOP, CHAT)], table
    assert (OTHER, CHAT) in after["deliveries"]
    # Each of the shop's broadcasts counts one recipient fewer, so the one still sending
    # completes once its remaining recipient is terminal; the other bot's keeps its two.
    totals = {
        r["uid"]: r["total"] for r in await db.fetch("SELECT uid::text, total FROM broadcasts")
    }
    assert totals == {uids["shop-done"]: 1, uids["shop-sending"]: 1, uids["other"]: 2}

    again = await forget_chat(db, bot_id=SHOP, chat_id=CHAT)
    assert again.total == 0


async def test_forget_refuses_an_unknown_bot_and_changes_nothing(db: asyncpg.Connection) -> None:
    await _seed(db)
    before = await _census(db)
    with pytest.raises(UnknownBot, match="knows no bot 333"):
        await forget_chat(db, bot_id="333", chat_id=CHAT)
    assert await _census(db) == before


def _cli(
    dsn: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "herald.dev.cli", "subscribers", "forget", *args],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "HERALD_DATABASE_URL": dsn,
            "KUBECONFIG": "/nonexistent",
            **(env or {}),
        },
        timeout=60,
        check=False,
    )


async def test_cli_prints_what_it_removed(database: str, db: asyncpg.Connection) -> None:
    await _seed(db)
    done = await asyncio.to_thread(_cli, database, str(CHAT), "--bot", SHOP)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"forgot chat {CHAT} of bot {SHOP}:",
        "  subscribers: 1",
        "  ledger rows: 2 (of 2 broadcasts)",
        "  clicks: 2",
        "  transactional messages: 2",
    ]
    nothing = await asyncio.to_thread(_cli, database, str(CHAT), "--bot", SHOP)
    assert nothing.returncode == 0, nothing.stderr
    assert f"nothing was recorded for chat {CHAT} of bot {SHOP}" in nothing.stderr
    # A group's negative id, after `--`.
    group = await asyncio.to_thread(_cli, database, "--bot", OTHER, "--", "-1001234")
    assert group.returncode == 0, group.stderr
    assert "forgot chat -1001234 of bot 222:" in group.stdout

    unknown = await asyncio.to_thread(_cli, database, str(CHAT), "--bot", "333")
    assert unknown.returncode == 1
    assert "the database knows no bot 333" in unknown.stderr
    assert "nothing was removed" in unknown.stderr
    no_bot = await asyncio.to_thread(_cli, database, str(CHAT))
    assert no_bot.returncode == 2
    assert "Missing option '--bot'" in no_bot.stderr
    not_an_id = await asyncio.to_thread(_cli, database, str(CHAT), "--bot", "0111")
    assert not_an_id.returncode == 1
    assert "not a bot id" in not_an_id.stderr
    assert (OTHER, CHAT) in (await _census(db))["subscribers"]


@pytest.mark.controlplane
async def test_cli_names_an_unknown_bot_resource(
    database: str, db: asyncpg.Connection, tmp_path: Path, kubectl: Kubectl
) -> None:
    await _seed(db)
    namespace = kubectl.namespace
    assert namespace is not None
    body = json.dumps(bot_manifest("shop", "shop-token"))
    await asyncio.to_thread(kubectl, "create", "-f", "-", input=body)
    patch = json.dumps({"status": {"botId": int(SHOP)}})
    await asyncio.to_thread(
        kubectl, "patch", "bot", "shop", "--subresource=status", "--type=merge", "-p", patch
    )
    kube = {"KUBECONFIG": str(kubectl.kubeconfig)}

    by_name = await asyncio.to_thread(
        _cli, database, str(CHAT), "--bot", f"{namespace}/shop", env=kube
    )
    assert by_name.returncode == 0, by_name.stderr
    assert f"forgot chat {CHAT} of bot {SHOP}:" in by_name.stdout
    absent = await asyncio.to_thread(
        _cli, database, str(CHAT), "--bot", f"{namespace}/absent", env=kube
    )
    assert absent.returncode == 1
    assert f'no Bot "absent" in namespace {namespace}' in absent.stderr
