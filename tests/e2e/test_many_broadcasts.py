"""Fifty Broadcasts applied in one `kubectl apply` of a List, over three bots, as a GitOps
pipeline applies a folder: every one completes, no chat twice, each bot within its limit,
every status exact. Twenty at once once hung the operator for good: each preparation held
one pool connection while it waited for a second."""

from __future__ import annotations

import asyncio

from herald.dev.fleets import Bot, fleet, wait_all_complete
from herald.dev.systems import BOT_SECRET, TOKEN
from herald.dev.systems import LocalSystem as Herald

BOTS = (
    Bot(BOT_SECRET, TOKEN),
    Bot("bot-b", "223456:fleet-b"),
    Bot("bot-c", "323456:fleet-c"),
)


async def test_fifty_broadcasts_applied_at_once_all_complete_exactly(herald: Herald) -> None:
    planned = fleet(50, bots=BOTS, smallest=10, largest=100)
    for bot in BOTS[1:]:
        herald.create_bot_secret(bot.secret, bot.token)
    await asyncio.to_thread(
        herald.kubectl, "apply", "-f", "-", input=planned.list_manifest(), timeout=120
    )

    names = [b.name for b in planned.broadcasts]
    statuses = await wait_all_complete(
        herald.kubectl, names, within=planned.ideal_seconds() * 3 + 120
    )

    for broadcast in planned.broadcasts:
        status = statuses[broadcast.name]
        reached = {k: status.get(k) for k in ("total", "delivered", "pending", "failed")}
        assert reached == {
            "total": len(broadcast.chat_ids),
            "delivered": len(broadcast.chat_ids),
            "pending": 0,
            "failed": 0,
        }, broadcast.name
        assert status["phase"] == "Completed"
    async with herald.emulator() as emulator:
        for bot in BOTS:
            summary = await emulator.summary(token=bot.token)
            sent = await emulator.messages(token=bot.token)
            wanted = {c for b in planned.broadcasts if b.bot == bot for c in b.chat_ids}
            assert {m.chat_id for m in sent} == wanted, bot.secret
            assert summary.total == len(wanted) == planned.recipients(bot)
            assert summary.duplicates.get(bot.token, {}) == {}
            assert summary.max_per_second[bot.token] <= bot.messages_per_second
            assert summary.too_many_requests.get(bot.token, 0) == 0
    rows = await herald.sql("SELECT state, count(*) AS n FROM deliveries GROUP BY state")
    total = sum(len(b.chat_ids) for b in planned.broadcasts)
    assert {r["state"]: r["n"] for r in rows} == {"delivered": total}
