"""What must hold after any fault, checked against the three witnesses that do not share
code with one another: the Telegram emulator (what was actually sent, and every refusal),
the ledger in Postgres (what Herald believes), and the Broadcast's status (what it reports).

- the broadcast completes (or stays exactly paused);
- no chat received two messages, and none outside the ledger received anything;
- every recipient is terminal, and every non-delivered one has a reason;
- the status counts equal the ledger's, and what the ledger calls delivered is exactly what
  the emulator accepted, message id for message id;
- no send of the bot reached the emulator inside the retry_after of a 429 it was given;
- the uncertain rows stay within what the fault could leave uncertain.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
from nats.js.api import ConsumerConfig

from herald.core import envelopes, streams, subjects
from herald.core.deliveries import DeliveryState
from herald.dev import processes
from herald.dev.controlplane import ControlPlane
from herald.dev.kubectl import Kubectl
from herald.dev.nats import NatsAccess
from herald.dev.systems import TOKEN, LocalSystem, local_system
from herald.emulator import RecordedMessage, Refusal

__all__ = [
    "ACK_WAIT",
    "GRACE",
    "MAX_IN_FLIGHT",
    "SETTINGS",
    "Verified",
    "apply_paid",
    "lease_holder",
    "restart_operator",
    "seed",
    "sent",
    "shorten_ack_wait",
    "system",
    "verify",
    "wait_delivered",
    "wait_lease_holder",
    "wait_published",
    "wait_replaced",
]

# Bounds what a fault can leave uncertain: a sender never holds more rows claimed but
# unrecorded. Large enough for a 5,000-recipient broadcast to take seconds; crash tests use
# a smaller bound of their own, so each crash can leave only a handful uncertain.
MAX_IN_FLIGHT = 32
# Short timings so crashes play out in seconds: a dead sender's claims count as abandoned
# after 3 s, its bot lease after 2 s; requests time out after 2 s.
SETTINGS = {
    "HERALD_SENDER_MAX_IN_FLIGHT": str(MAX_IN_FLIGHT),
    "HERALD_SENDER_CLAIM_TTL_SECONDS": "3",
    "HERALD_SENDER_REQUEST_TIMEOUT_SECONDS": "2",
    "HERALD_SENDER_LEASE_SECONDS": "2",
    "HERALD_SENDER_SHUTDOWN_SECONDS": "10",
}
# JetStream redelivers the batches a killed sender held once their ack wait runs out: 30 s
# as the operator creates the consumer, this long where a test shortens it.
ACK_WAIT = 3.0
# Requests already on their way when a 429 was answered may arrive just after it; anything
# later than this inside the retry_after was sent by a client that ignored the answer.
GRACE = 1.0

_OPEN = {DeliveryState.PENDING.value, DeliveryState.CLAIMED.value, DeliveryState.SENDING.value}
_NEEDS_REASON = {
    DeliveryState.BLOCKED.value,
    DeliveryState.FAILED.value,
    DeliveryState.UNCERTAIN.value,
}


@contextlib.asynccontextmanager
async def system(
    controlplane: ControlPlane,
    kubectl: Kubectl,
    *,
    database: str,
    nats_access: NatsAccess,
    logs: Path,
    settings: Mapping[str, str] | None = None,
) -> AsyncIterator[LocalSystem]:
    """A whole Herald on local processes with SETTINGS, then `settings` over them."""
    async with local_system(
        kubeconfig=controlplane.kubeconfig,
        kubectl=kubectl,
        database=database,
        nats=nats_access,
        logs=logs,
        settings={**SETTINGS, **(settings or {})},
    ) as running:
        yield running


async def seed(herald: LocalSystem, count: int) -> None:
    await herald.seed(herald.subscribers(count))


def apply_paid(herald: LocalSystem, name: str, *, rate: int = 1000, **spec: Any) -> None:
    """A paid broadcast to every subscriber, as fast as Telegram allows paid broadcasts."""
    herald.apply(
        name,
        {
            "content": {"text": "Hello {first_name}"},
            "audience": {"subscribers": {}},
            "rate": {"messagesPerSecond": rate, "allowPaidBroadcast": True},
            **spec,
        },
    )


async def sent(herald: LocalSystem) -> int:
    async with herald.emulator() as emulator:
        return (await emulator.summary(token=TOKEN)).total


async def wait_delivered(herald: LocalSystem, count: int, *, within: float = 60) -> int:
    """Until the emulator has accepted at least `count` sends; returns how many."""
    deadline = time.monotonic() + within
    while (total := await sent(herald)) < count:
        if time.monotonic() > deadline:
            raise AssertionError(
                f"only {total} of {count} sends after {within:.0f}s; operator log:\n"
                f"{herald.operator.tail(30)}"
            )
        await asyncio.sleep(0.05)
    return total


async def wait_published(herald: LocalSystem, name: str, batches: int) -> str:
    """Until all `batches` of broadcast `name` are queued; returns its uid."""
    uid: str = herald.get(name)["metadata"]["uid"]
    client = await nats.connect(herald.nats_url)
    try:
        js = client.jetstream()
        deadline = time.monotonic() + 60
        while True:
            # On a cluster, a consumer whose group is still electing its leader answers nothing.
            with contextlib.suppress(nats.js.errors.NotFoundError, nats.errors.TimeoutError):
                info = await js.consumer_info(subjects.WORK_STREAM, subjects.work_consumer(uid))
                if info.num_pending >= batches:
                    return uid
            assert time.monotonic() < deadline, herald.operator.tail(30)
            await asyncio.sleep(0.1)
    finally:
        await client.close()


async def shorten_ack_wait(herald: LocalSystem, uid: str) -> None:
    """Give the broadcast's work consumer an ACK_WAIT ack wait, before any sender binds to it
    (a sender reads the ack wait once, to time its keep-alives)."""
    client = await nats.connect(herald.nats_url)
    try:
        js = client.jetstream()
        info = await js.consumer_info(subjects.WORK_STREAM, subjects.work_consumer(uid))
        config: ConsumerConfig = info.config
        config.ack_wait = ACK_WAIT
        await js.add_consumer(subjects.WORK_STREAM, config)
        info = await js.consumer_info(subjects.WORK_STREAM, subjects.work_consumer(uid))
        assert info.config.ack_wait == ACK_WAIT
    finally:
        await client.close()


async def lease_holder(herald: LocalSystem) -> int | None:
    """The pid of the live sender process that holds the bot's lease, if one does."""
    client = await nats.connect(herald.nats_url)
    try:
        kv = await streams.ensure_control_bucket(client.jetstream())
        try:
            entry = await kv.get(subjects.bot_lease_key(TOKEN.partition(":")[0]))
        except nats.js.errors.KeyNotFoundError:
            return None
    finally:
        await client.close()
    if not entry.value:
        return None
    lease = envelopes.decode(envelopes.Lease, entry.value)
    for pid in herald.supervisor.pids:
        if _sender_id(pid) == lease.holder:
            return pid
    return None


async def wait_lease_holder(
    herald: LocalSystem, *, within: float = 30, other_than: Collection[int] = ()
) -> int:
    """The pid of the lease holder, once there is one not among `other_than` (senders told
    to stop hold the lease until they have handed over)."""
    deadline = time.monotonic() + within
    while (pid := await lease_holder(herald)) is None or pid in other_than:
        assert time.monotonic() < deadline, "no live sender took the bot's lease"
        await asyncio.sleep(0.05)
    return pid


async def wait_replaced(herald: LocalSystem, count: int, *, within: float = 40) -> None:
    """Until the supervisor has replaced `count` exited senders. When a broadcast completes,
    the last sender stopped may still be finishing its sends, and the supervisor sees exits
    only at its interval; a stopped sender has its grace period (30 s) to go."""
    await herald.wait_for(
        lambda: herald.supervisor.restarts >= count,
        within=within,
        what=f"{count} exited senders replaced",
    )


def _sender_id(pid: int) -> str | None:
    """HERALD_SENDER_ID of one of the supervisor's sender processes."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    for entry in environ.split(b"\0"):
        key, _, value = entry.partition(b"=")
        if key == b"HERALD_SENDER_ID":
            return value.decode()
    return None


def restart_operator(herald: LocalSystem) -> processes.ManagedProcess:
    """A new operator process like the first (same settings, same log), as a Deployment
    would start after the old Pod died. The caller stops it."""
    old = herald.operator
    new = processes.ManagedProcess(
        name=old.name, argv=list(old.argv), log_path=old.log_path, env=old.env
    ).start()
    herald.operator = new
    return new


@dataclass(frozen=True)
class Verified:
    """What the checks found, for a test's own assertions on top."""

    uid: str
    status: dict[str, Any]
    ledger: Counter[str]
    reasons: Counter[str]
    received: list[RecordedMessage]
    refusals: list[Refusal]
    # Uncertain rows whose request Telegram received (on the wire at a crash, or answered
    # and not yet recorded), and the chats of those it never received.
    uncertain_sent: int
    uncertain_unsent: list[int]
    duplicates: int  # messages beyond the first per chat


async def verify(
    herald: LocalSystem,
    name: str,
    *,
    uncertain_at_most: int = 0,
    duplicates_at_most: int = 0,
    completed: bool = True,
    floods: bool = False,
) -> Verified:
    """Every post-condition of the module docstring for the one broadcast `name` of this
    system. `completed` False checks a paused broadcast; `floods` allows 429 answers (whose
    retry_after must still have been honoured); `duplicates_at_most` allows that many
    messages beyond one per chat (an atLeastOnce broadcast's resends after a crash)."""
    body = herald.get(name)
    uid = body["metadata"]["uid"]
    if completed:
        await herald.wait_condition(name, "Complete", within=90)
        # The final status is written together with Complete; read it once more after.
        body = herald.get(name)
    status: dict[str, Any] = body.get("status", {})
    rows = await herald.sql(
        "SELECT chat_id, state, reason, message_id, claimed_by, attempts "
        "FROM deliveries WHERE broadcast_uid = $1",
        uid,
    )
    async with herald.emulator() as emulator:
        received = await emulator.messages(token=TOKEN)
        refusals = await emulator.refusals(token=TOKEN)
    received = [m for m in received if m.sending]
    refusals = [r for r in refusals if r.chat_id is not None]

    ledger = Counter(row["state"] for row in rows)
    reasons = Counter(f"{row['state']}:{row['reason']}" for row in rows if row["reason"])
    context = f"ledger {dict(ledger)}, status {_counts(status)}"

    # Terminal, with reasons.
    if completed:
        assert status.get("phase") == "Completed", context
        assert not _OPEN & set(ledger), context
    unexplained = [r["chat_id"] for r in rows if r["state"] in _NEEDS_REASON and not r["reason"]]
    assert unexplained == [], f"terminal without a reason: {unexplained[:10]}"

    # The status tells the ledger's truth.
    assert _counts(status) == {
        "total": len(rows),
        "delivered": ledger["delivered"],
        "failed": ledger["failed"],
        "blocked": ledger["blocked"],
        "pending": ledger["pending"] + ledger["claimed"] + ledger["sending"],
        "uncertain": ledger["uncertain"],
    }, context

    # At most one message per chat, only to the ledger's chats, and "delivered" means sent.
    per_chat = Counter(m.chat_id for m in received)
    twice = {chat: n for chat, n in per_chat.items() if n > 1}
    duplicates = sum(n - 1 for n in twice.values())
    assert duplicates <= duplicates_at_most, (
        f"chats messaged more than once: {dict(list(twice.items())[:10])}"
    )
    states = {row["chat_id"]: row["state"] for row in rows}
    outside = [chat for chat in per_chat if chat not in states]
    assert outside == [], f"sent outside the ledger: {outside[:10]}"
    # The last copy a chat received is the one the ledger records.
    accepted = {m.chat_id: m.message_id for m in sorted(received, key=lambda m: m.monotonic)}
    claimed_delivered = {r["chat_id"]: r["message_id"] for r in rows if r["state"] == "delivered"}
    never_sent = [chat for chat in claimed_delivered if chat not in accepted]
    assert never_sent == [], f"delivered in the ledger, never sent: {never_sent[:10]}"
    wrong_ids = [c for c, m in claimed_delivered.items() if accepted[c] != m]
    assert wrong_ids == [], f"ledger message ids differ from Telegram's: {wrong_ids[:10]}"
    unrecorded = [c for c in accepted if states[c] not in ("delivered", "uncertain")]
    assert unrecorded == [], f"sent but recorded as neither delivered nor uncertain: {unrecorded}"

    # Every 429's retry_after was honoured by the whole bot.
    floods_given = [r for r in refusals if r.status == 429]
    assert floods or floods_given == [], f"unexpected 429s: {floods_given[:3]}"
    attempts = sorted([m.monotonic for m in received] + [r.monotonic for r in refusals])
    for flood in floods_given:
        assert flood.retry_after is not None
        start, end = flood.monotonic + GRACE, flood.monotonic + flood.retry_after
        inside = [t for t in attempts if start <= t < end]
        assert inside == [], (
            f"{len(inside)} sends within the retry_after={flood.retry_after} answered at "
            f"{flood.monotonic:.3f}, first at +{inside[0] - flood.monotonic:.3f}s"
        )

    lost = Counter(f"{r['claimed_by']}:{r['reason']}" for r in rows if r["state"] == "uncertain")
    assert ledger["uncertain"] <= uncertain_at_most, f"{context}; uncertain by claimant {lost}"
    uncertain = [r["chat_id"] for r in rows if r["state"] == "uncertain"]
    unsent = [chat for chat in uncertain if chat not in accepted]
    return Verified(
        uid,
        status,
        ledger,
        reasons,
        received,
        refusals,
        uncertain_sent=len(uncertain) - len(unsent),
        uncertain_unsent=unsent,
        duplicates=duplicates,
    )


def _counts(status: dict[str, Any]) -> dict[str, int]:
    keys = ("total", "delivered", "failed", "blocked", "pending", "uncertain")
    return {key: int(status.get(key) or 0) for key in keys}
