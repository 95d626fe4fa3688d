"""Sending again to those who did not get it (spec.audience.fromBroadcast), on real parts:
a broadcast meets chats Telegram does not know (failed) and answers that never come
(uncertain), then a second Broadcast reaches exactly those chats."""

from __future__ import annotations

from faults import checks
from herald.dev.systems import TOKEN, LocalSystem

AUDIENCE = 300
SEED = 20_261_202
UNKNOWN = [10_011, 10_101, 10_201]  # "chat not found": failed


async def test_from_broadcast_reaches_exactly_the_failed_and_uncertain_chats(
    herald: LocalSystem,
) -> None:
    async with herald.emulator() as emulator:
        await emulator.configure(
            {"faults": {"drop_ratio": 0.03}, "seed": SEED, "not_found": UNKNOWN}
        )
    await checks.seed(herald, AUDIENCE)
    checks.apply_paid(herald, "first", rate=200)
    first = await checks.verify(herald, "first", uncertain_at_most=AUDIENCE)
    assert first.ledger["failed"] == len(UNKNOWN)
    assert first.ledger["uncertain"] > 0
    missed = await herald.sql(
        "SELECT chat_id FROM deliveries WHERE broadcast_uid = $1 "
        "AND state IN ('failed', 'uncertain') ORDER BY chat_id",
        first.uid,
    )
    expected = [row["chat_id"] for row in missed]
    assert set(UNKNOWN) <= set(expected)

    # Telegram behaves now; the second Broadcast reads the first one's ledger.
    async with herald.emulator() as emulator:
        await emulator.configure({"faults": {"drop_ratio": 0.0}, "not_found": []})
        before = len([m for m in await emulator.messages(token=TOKEN) if m.sending])
    herald.apply(
        "again",
        {
            "content": {"text": "Hello again {first_name}"},
            "audience": {"fromBroadcast": {"name": "first", "states": ["failed", "uncertain"]}},
            "rate": {"messagesPerSecond": 30},
        },
    )
    await herald.wait_condition("again", "Complete", within=90)
    status = herald.status("again")
    assert (status["total"], status["delivered"]) == (len(expected), len(expected))
    uid = herald.get("again")["metadata"]["uid"]
    rows = await herald.sql(
        "SELECT chat_id FROM deliveries WHERE broadcast_uid = $1 ORDER BY chat_id", uid
    )
    assert [row["chat_id"] for row in rows] == expected
    async with herald.emulator() as emulator:
        sent = [m for m in await emulator.messages(token=TOKEN) if m.sending][before:]
    assert sorted(m.chat_id or 0 for m in sent) == expected
    assert all(m.payload["text"].startswith("Hello again") for m in sent)
