"""The operator end to end: a real `herald-operator` process, API server, NATS and Postgres.

There is no sender here: tests play its part in SQL (``UPDATE deliveries SET state = ...``)
and by writing KV records, and read what the operator did from the API server, the stream,
the KV bucket and the ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import AckPolicy
from nats.js.errors import KeyNotFoundError, NotFoundError
from prometheus_client.parser import text_string_to_metric_families

from herald.core import envelopes, subjects
from herald.core.envelopes import (
    BotRecord,
    BotTraffic,
    BroadcastState,
    CompletionRecord,
    ControlRecord,
    FaultReason,
    FaultRecord,
    SendLimits,
    WorkBatch,
)
from herald.core.permissions import Component
from herald.core.sealing import KeyRing
from herald.dev import keys
from herald.dev.controlplane import ControlPlane
from herald.dev.kubectl import Kubectl
from herald.dev.nats import NatsAccess
from herald.dev.processes import ManagedProcess, free_port, wait_until
from herald.dev.systems import bot_manifest
from herald.emulator import RunningEmulator

pytestmark = pytest.mark.controlplane

TOKEN = "123456:operator-test"


@dataclass
class Operator:
    process: ManagedProcess
    env: dict[str, str]
    starts: int = 1

    def wait_ready(self) -> None:
        """Until the operator has ensured its streams and bucket and started watching."""
        log = self.process.log_path
        wait_until(
            lambda: log.read_text().count("Initial authentication has finished") >= self.starts,
            timeout=30,
            what="the operator to start",
            process=self.process,
        )

    def restart(self, *, kill: bool = False) -> None:
        if kill:
            os.killpg(self.process.pid, 9)
            time.sleep(0.2)
        self.process.stop()
        self.process = ManagedProcess(
            "herald-operator", self.process.argv, self.process.log_path, self.env
        ).start()
        self.starts += 1
        self.wait_ready()


def operator_env(
    controlplane: ControlPlane,
    kubectl: Kubectl,
    nats: NatsAccess,
    database: str,
    telegram_url: str,
    **extra: str,
) -> dict[str, str]:
    env = dict(os.environ)
    env.update(nats.env(Component.OPERATOR))
    env.update(
        KUBECONFIG=str(controlplane.kubeconfig),
        HERALD_TELEGRAM_API_URL=telegram_url,
        HERALD_DATABASE_URL=database,
        HERALD_SENDER_NAMESPACE=str(kubectl.namespace),
        # Only this test's namespace: other tests' Broadcasts belong to other databases.
        HERALD_OPERATOR_NAMESPACES=json.dumps([kubectl.namespace]),
        HERALD_OPERATOR_TIMER_SECONDS="0.5",
        HERALD_OPERATOR_REFRESH_SECONDS="1",
        HERALD_OPERATOR_NATS_TIMEOUT_SECONDS="3",
        HERALD_OPERATOR_LIVENESS_PORT="0",
        HERALD_OPERATOR_METRICS_PORT="0",
        HERALD_OPERATOR_BATCH_SIZE="2",
    )
    env.update(extra)
    return env


@pytest.fixture
def operator_overrides() -> dict[str, str]:
    """Extra environment for the operator; a test overrides this fixture to change it."""
    return {}


@pytest.fixture
def operator(
    controlplane: ControlPlane,
    kubectl: Kubectl,
    nats_access: NatsAccess,
    database: str,
    emulator: RunningEmulator,
    tmp_path: Path,
    operator_overrides: dict[str, str],
) -> Iterator[Operator]:
    env = operator_env(
        controlplane, kubectl, nats_access, database, emulator.url, **operator_overrides
    )
    argv = [str(Path(sys.executable).parent / "herald-operator")]
    process = ManagedProcess("herald-operator", argv, tmp_path / "operator.log", env).start()
    running = Operator(process, env)
    running.wait_ready()
    try:
        yield running
    finally:
        running.process.stop()
        log = running.process.log_path.read_text(errors="replace")
        # No secret ever reaches the log.
        assert TOKEN not in log
        assert database not in log
        assert nats_access.passwords[Component.OPERATOR] not in log
        assert "Traceback" not in log, running.process.tail(60)


@pytest.fixture
async def db(database: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database)
    yield connection
    await connection.close()


@pytest.fixture
async def js(nats_url: str) -> AsyncIterator[JetStreamContext]:
    client: NatsClient = await nats.connect(nats_url)
    yield client.jetstream()
    await client.close()


async def eventually(
    check: Callable[[], Awaitable[Any]], *, within: float = 20.0, what: str = ""
) -> Any:
    """Poll until ``check`` returns something truthy; return it."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what or check}: last {last!r}")


def apply_secret(kubectl: Kubectl, name: str = "shop-bot", token: str = TOKEN) -> None:
    kubectl("create", "secret", "generic", name, f"--from-literal=token={token}")


def apply_broadcast(kubectl: Kubectl, name: str, **spec: Any) -> str:
    body: dict[str, Any] = {
        "botRef": {"name": "shop-bot"},
        "content": {"text": "<b>Sale</b> starts now"},
        "audience": {"subscribers": {}},
    }
    body.update(spec)
    manifest = {
        "apiVersion": "herald.dev/v1alpha1",
        "kind": "Broadcast",
        "metadata": {"name": name},
        "spec": body,
    }
    kubectl("apply", "-f", "-", input=json.dumps(manifest))
    return str(kubectl("get", "broadcast", name, "-o", "jsonpath={.metadata.uid}").stdout)


def get(kubectl: Kubectl, name: str) -> dict[str, Any]:
    result = kubectl("get", "broadcast", name, "-o", "json", check=False)
    if result.returncode != 0:
        return {}
    loaded: dict[str, Any] = json.loads(result.stdout)
    return loaded


def condition(kubectl: Kubectl, name: str, type_: str) -> dict[str, Any]:
    for c in get(kubectl, name).get("status", {}).get("conditions", []):
        if c["type"] == type_:
            return dict(c)
    return {}


BOT_ID = TOKEN.partition(":")[0]
OTHER_BOT_ID = "999999"


async def seed(db: asyncpg.Connection, count: int, *, first: int = 1000) -> None:
    """Subscribers of the test's bot."""
    await db.execute(
        "INSERT INTO subscribers (bot_id, chat_id, first_name, language_code) "
        "SELECT $3, g, 'user' || g, 'en' FROM generate_series($1::bigint, $2::bigint) g",
        first,
        first + count - 1,
        BOT_ID,
    )


async def control(js: JetStreamContext, uid: str) -> ControlRecord | None:
    kv = await js.key_value(subjects.CONTROL_BUCKET)
    try:
        entry = await kv.get(subjects.control_key(uid))
    except KeyNotFoundError:
        return None
    return envelopes.decode(ControlRecord, entry.value or b"")


async def queued(js: JetStreamContext, uid: str) -> list[WorkBatch]:
    """The broadcast's batches in the stream, read without consuming them."""
    return [batch for batch, _ in await queued_with_ids(js, uid)]


async def queued_with_ids(js: JetStreamContext, uid: str) -> list[tuple[WorkBatch, str]]:
    """The batches with their message ids, ``<uid>:<round>:<first>:<last>``."""
    info = await js.stream_info(subjects.WORK_STREAM, subjects_filter=subjects.work_subject(uid))
    batches: list[tuple[WorkBatch, str]] = []
    if info.state.messages == 0:
        return batches
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        try:
            msg = await js.get_msg(subjects.WORK_STREAM, seq)
        except NotFoundError:
            continue
        if msg.subject == subjects.work_subject(uid):
            batch = envelopes.decode(WorkBatch, msg.data or b"")
            msg_id = (msg.headers or {})["Nats-Msg-Id"]
            assert msg_id.startswith(f"{uid}:") and msg_id.endswith(batch.msg_id(0)[len(uid) + 2 :])
            batches.append((batch, msg_id))
    return batches


async def states(db: asyncpg.Connection, uid: str) -> dict[str, int]:
    rows = await db.fetch(
        "SELECT state, count(*) AS n FROM deliveries WHERE broadcast_uid = $1 GROUP BY state", uid
    )
    return {r["state"]: r["n"] for r in rows}


def sender_deployment(kubectl: Kubectl) -> None:
    """A sender Deployment that never gets pods here (no kubelet); its scale works."""
    manifest = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "herald-sender"},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "herald-sender"}},
            "template": {
                "metadata": {"labels": {"app": "herald-sender"}},
                "spec": {"containers": [{"name": "sender", "image": "herald:dev"}]},
            },
        },
    }
    kubectl("apply", "-f", "-", input=json.dumps(manifest))


def replicas(kubectl: Kubectl) -> int:
    out = kubectl("get", "deployment", "herald-sender", "-o", "jsonpath={.spec.replicas}").stdout
    return int(out or 0)


async def test_a_bot_counts_its_own_subscribers(
    operator: Operator, kubectl: Kubectl, db: asyncpg.Connection
) -> None:
    await seed(db, 2)  # 1000, 1001: active
    await db.execute(
        "INSERT INTO subscribers (bot_id, chat_id, is_active) VALUES "
        "($1, 1002, false), ($2, 1000, false), ($2, 5000, true), ($2, 5001, true)",
        BOT_ID,
        OTHER_BOT_ID,
    )
    apply_secret(kubectl)
    kubectl("apply", "-f", "-", input=json.dumps(bot_manifest("shop", "shop-bot")))

    async def counted() -> dict[str, Any] | None:
        status = json.loads(kubectl("get", "bot", "shop", "-o", "json").stdout).get("status", {})
        counts: dict[str, Any] | None = status.get("subscribers")
        return counts

    assert await eventually(counted, what="the Bot's subscriber counts") == {
        "active": 2,
        "inactive": 1,
    }


async def test_broadcast_lifecycle(
    operator: Operator, kubectl: Kubectl, db: asyncpg.Connection, js: JetStreamContext
) -> None:
    await seed(db, 5)  # 1000..1004, language en
    await db.execute(
        "INSERT INTO subscribers (bot_id, chat_id, language_code, is_active) VALUES "
        "($1, 2000, 'en', false), ($1, 2001, 'ru', true), ($1, 2002, 'en-us', true)",
        BOT_ID,
    )
    # Another bot's subscribers: some of the same users, who blocked that bot, not this one,
    # and a user of that bot only.
    await db.execute(
        "INSERT INTO subscribers (bot_id, chat_id, first_name, language_code, is_active) "
        "VALUES ($1, 1000, 'other', 'en', false), ($1, 1001, 'other', 'en', false), "
        "($1, 5000, 'other', 'en', true)",
        OTHER_BOT_ID,
    )
    sender_deployment(kubectl)
    apply_secret(kubectl)
    # 1002 is selected twice (dedupe), 2000 is inactive (excluded even when listed),
    # 3000 is no subscriber at all (explicit ids are included), 2001 speaks ru; 5000 is the
    # other bot's, and 1000 and 1001 blocked the other bot only.
    uid = apply_broadcast(
        kubectl,
        "sale",
        audience={"subscribers": {"languages": ["en"]}, "chatIds": [1002, 2000, 3000]},
    )

    expected = [1000, 1001, 1002, 1003, 1004, 2002, 3000]

    async def ledger() -> list[int]:
        rows = await db.fetch(
            "SELECT chat_id FROM deliveries WHERE broadcast_uid = $1 ORDER BY chat_id", uid
        )
        return [r["chat_id"] for r in rows]

    assert await eventually(ledger, what="the ledger") == expected
    batches = await eventually(
        lambda: _when(queued(js, uid), lambda b: len(b) == 4), what="four batches of two"
    )
    assert [r.chat_id for b in batches for r in b.recipients] == expected
    cuts = [expected[i : i + 2] for i in range(0, len(expected), 2)]
    assert [b.msg_id(0) for b in batches] == [f"{uid}:0:{c[0]}:{c[-1]}" for c in cuts]
    assert batches[2].recipients[1].language_code == "en-us"
    assert batches[0].recipients[0].first_name == "user1000"

    record = await eventually(lambda: control(js, uid), what="the control record")
    assert record.state is BroadcastState.ACTIVE
    assert record.open_token(KeyRing.parse(keys.token_keys())) == TOKEN
    assert record.bot_id == "123456"
    consumer = await js.consumer_info(subjects.WORK_STREAM, subjects.work_consumer(uid))
    assert consumer.config.filter_subject == subjects.work_subject(uid)
    assert consumer.num_pending == 4

    async def phase_is(phase: str) -> bool:
        return bool(get(kubectl, "sale").get("status", {}).get("phase") == phase)

    await eventually(lambda: phase_is("Sending"), what="Sending")
    status = get(kubectl, "sale")["status"]
    assert status["total"] == 7
    assert condition(kubectl, "sale", "Reconciling")["status"] == "True"
    await eventually(lambda: _sync(replicas(kubectl) == 1), what="one sender replica")

    # Pause: KV says PAUSED within about a second, the status says Paused.
    kubectl("patch", "broadcast", "sale", "--type=merge", "-p", '{"spec":{"paused":true}}')
    paused = await eventually(
        lambda: _when(control(js, uid), lambda r: r.state is BroadcastState.PAUSED),
        within=1.5,
        what="PAUSED in KV",
    )
    assert paused.generation == 2
    await eventually(lambda: phase_is("Paused"), within=5, what="phase Paused")
    assert get(kubectl, "sale")["status"]["observedGeneration"] == 2
    assert condition(kubectl, "sale", "Paused")["observedGeneration"] == 2
    await eventually(lambda: _sync(replicas(kubectl) == 0), what="no replica while paused")

    kubectl("patch", "broadcast", "sale", "--type=merge", "-p", '{"spec":{"paused":false}}')
    await eventually(
        lambda: _when(control(js, uid), lambda r: r.state is BroadcastState.ACTIVE),
        within=1.5,
        what="ACTIVE in KV",
    )

    # Presses as the bot records them, before the end: the completion record carries them.
    await db.execute(
        "INSERT INTO clicks (broadcast_uid, chat_id, callback) "
        "VALUES ($1, 1000, 'yes'), ($1, 1002, 'yes'), ($1, 1003, 'no')",
        uid,
    )
    # Play the sender: everyone reached, one blocked.
    await db.execute(
        "UPDATE deliveries SET state = CASE WHEN chat_id = 1001 THEN 'blocked' "
        "ELSE 'delivered' END, finished_at = now() WHERE broadcast_uid = $1",
        uid,
    )
    waited = kubectl(
        "wait", "--for=condition=Complete", "broadcast/sale", "--timeout=20s", timeout=30
    )
    assert "condition met" in waited.stdout
    status = get(kubectl, "sale")["status"]
    assert status["phase"] == "Completed"
    assert (status["delivered"], status["blocked"], status["pending"]) == (6, 1, 0)
    assert status["progress"] == "100%"
    assert status["completedAt"]

    sub = await js.pull_subscribe(subjects.COMPLETIONS_SUBJECT, durable="test-bot")
    [msg] = await sub.fetch(1, timeout=5)
    done = envelopes.decode(CompletionRecord, msg.data)
    assert (done.uid, done.outcome, done.delivered, done.blocked) == (uid, "Complete", 6, 1)
    assert done.clicks == {"no": 1, "yes": 2}
    assert (
        await eventually(
            lambda: _when(control(js, uid), lambda r: r.state is BroadcastState.STOPPED),
            what="STOPPED",
        )
    ).state is BroadcastState.STOPPED
    with pytest.raises(NotFoundError):
        await js.consumer_info(subjects.WORK_STREAM, subjects.work_consumer(uid))
    await eventually(lambda: _sync(replicas(kubectl) == 0), what="back to zero replicas")

    events = kubectl(
        "get", "events", "--field-selector", "involvedObject.name=sale", "-o", "json"
    ).stdout
    reasons = {e["reason"] for e in json.loads(events)["items"]}
    assert {"Paused", "Complete"} <= reasons


async def _when(awaitable: Any, predicate: Any) -> Any:
    value = await awaitable
    return value if value is not None and predicate(value) else None


async def _sync(value: Any) -> Any:
    return value


async def test_missing_secret_stalls_until_it_exists(
    operator: Operator, kubectl: Kubectl, db: asyncpg.Connection, js: JetStreamContext
) -> None:
    await seed(db, 3)
    uid = apply_broadcast(kubectl, "no-secret")

    async def stalled() -> dict[str, Any]:
        c = condition(kubectl, "no-secret", "Stalled")
        return c if c.get("status") == "True" else {}

    cond = await eventually(stalled, what="Stalled")
    assert cond["reason"] == "BotSecretNotFound"
    assert "Secret 'shop-bot' was not found" in cond["message"]
    assert get(kubectl, "no-secret")["status"]["phase"] == "Stalled"
    assert await states(db, uid) == {}
    assert await control(js, uid) is None

    apply_secret(kubectl)
    await eventually(
        lambda: _sync(get(kubectl, "no-secret")["status"]["phase"] == "Sending"),
        what="sending once the Secret exists",
    )
    assert await states(db, uid) == {"pending": 3}


async def test_future_start_is_scheduled_then_sends(
    operator: Operator, kubectl: Kubectl, db: asyncpg.Connection
) -> None:
    await seed(db, 2)
    sender_deployment(kubectl)
    apply_secret(kubectl)
    # Within the default warm-up (30 s): its sender is started before startAt.
    start = (datetime.now(UTC) + timedelta(seconds=8)).replace(microsecond=0)
    uid = apply_broadcast(kubectl, "later", schedule={"startAt": start.isoformat()})
    await eventually(
        lambda: _sync(get(kubectl, "later").get("status", {}).get("phase") == "Scheduled"),
        what="Scheduled",
    )
    await eventually(lambda: _sync(replicas(kubectl) == 1), what="a sender before the start")
    assert datetime.now(UTC) < start
    assert get(kubectl, "later")["status"]["phase"] == "Scheduled"
    assert await states(db, uid) == {}
    await eventually(
        lambda: _sync(get(kubectl, "later")["status"]["phase"] == "Sending"), what="Sending"
    )
    assert datetime.now(UTC) >= start
    assert await states(db, uid) == {"pending": 2}


async def test_deadline_stops_and_fails_pending(
    operator: Operator, kubectl: Kubectl, db: asyncpg.Connection, js: JetStreamContext
) -> None:
    await seed(db, 4)
    apply_secret(kubectl)
    deadline = (datetime.now(UTC) + timedelta(seconds=4)).replace(microsecond=0)
    uid = apply_broadcast(kubectl, "late", schedule={"deadline": deadline.isoformat()})
    await eventually(lambda: _when(queued(js, uid), lambda b: len(b) == 2), what="queued")
    await db.execute(
        "UPDATE deliveries SET state = 'delivered' WHERE broadcast_uid = $1 AND chat_id = 1000",
        uid,
    )

    async def stalled() -> dict[str, Any]:
        c = condition(kubectl, "late", "Stalled")
        return c if c.get("status") == "True" else {}

    cond = await eventually(stalled, what="DeadlineExceeded")
    assert cond["reason"] == "DeadlineExceeded"
    assert await eventually(lambda: _when(states(db, uid), lambda s: "pending" not in s)) == {
        "delivered": 1,
        "failed": 3,
    }
    reasons = await db.fetch("SELECT DISTINCT reason FROM deliveries WHERE state = 'failed'")
    assert [r["reason"] for r in reasons] == ["DeadlineExceeded"]
    assert await queued(js, uid) == []
    record = await control(js, uid)
    assert record is not None
    assert record.state is BroadcastState.STOPPED
    status = await eventually(
        lambda: _sync(get(kubectl, "late")["status"]["failed"] == 3 and get(kubectl, "late")),
        what="final counts",
    )
    assert status["status"]["phase"] == "Failed"


async def test_a_deadline_already_past_settles_once(
    operator: Operator, kubectl: Kubectl, db: asyncpg.Connection, js: JetStreamContext
) -> None:
    await seed(db, 3)
    apply_secret(kubectl)
    uid = apply_broadcast(kubectl, "too-late", schedule={"deadline": "2020-01-01T00:00:00Z"})

    async def failed() -> dict[str, Any]:
        body = get(kubectl, "too-late")
        return body if body.get("status", {}).get("phase") == "Failed" else {}

    body = await eventually(failed, what="Failed")
    assert condition(kubectl, "too-late", "Stalled")["reason"] == "DeadlineExceeded"
    version = body["metadata"]["resourceVersion"]
    # Several timer periods later: nothing was written again, and one report went out.
    await asyncio.sleep(3)
    assert get(kubectl, "too-late")["metadata"]["resourceVersion"] == version
    sub = await js.pull_subscribe(subjects.COMPLETIONS_SUBJECT, durable=f"test-{uid[:8]}")
    records = []
    with contextlib.suppress(nats.errors.TimeoutError):
        for msg in await sub.fetch(100, timeout=2):
            records.append(envelopes.decode(CompletionRecord, msg.data))
    mine = [r for r in records if r.uid == uid]
    assert [(r.outcome, r.total) for r in mine] == [("DeadlineExceeded", 0)]
    assert await states(db, uid) == {}  # nothing was materialised


async def test_content_rejected_fault_fails_the_broadcast(
    operator: Operator, kubectl: Kubectl, db: asyncpg.Connection, js: JetStreamContext
) -> None:
    await seed(db, 3)
    apply_secret(kubectl)
    uid = apply_broadcast(kubectl, "bad-markup")
    await eventually(lambda: control(js, uid), what="control record")
    kv = await js.key_value(subjects.CONTROL_BUCKET)
    fault = FaultRecord(
        uid=uid,
        reason=FaultReason.CONTENT_REJECTED,
        message="Bad Request: can't parse entities",
        at=datetime.now(UTC),
    )
    await kv.put(subjects.fault_key(uid), envelopes.encode(fault))
    await eventually(
        # The control record is written before the first status: the status may not exist yet.
        lambda: _sync(get(kubectl, "bad-markup").get("status", {}).get("phase") == "Failed"),
        what="Failed",
    )
    cond = condition(kubectl, "bad-markup", "Stalled")
    assert (cond["reason"], cond["message"]) == ("ContentRejected", fault.message)
    await eventually(
        lambda: _when(control(js, uid), lambda r: r.state is BroadcastState.STOPPED),
        what="STOPPED",
    )
    assert await eventually(lambda: _when(states(db, uid), lambda s: "pending" not in s)) == {
        "failed": 3
    }


async def test_lost_work_is_queued_again_in_a_new_round(
    operator: Operator, kubectl: Kubectl, db: asyncpg.Connection, js: JetStreamContext
) -> None:
    await seed(db, 6)
    apply_secret(kubectl)
    uid = apply_broadcast(kubectl, "purged")
    await eventually(lambda: _when(queued(js, uid), lambda b: len(b) == 3), what="queued")
    # A sender got the first two through, then the work went (a purge, a lost stream).
    await db.execute(
        "UPDATE deliveries SET state = 'delivered' WHERE broadcast_uid = $1 AND chat_id < 1002",
        uid,
    )
    await js.purge_stream(subjects.WORK_STREAM, subject=subjects.work_subject(uid))
    again = await eventually(
        lambda: _when(queued_with_ids(js, uid), lambda b: len(b) == 2), what="queued again"
    )
    # Only the recipients still pending, under ids JetStream has not seen in this window.
    assert [msg_id for _, msg_id in again] == [f"{uid}:1:1002:1003", f"{uid}:1:1004:1005"]
    assert await states(db, uid) == {"delivered": 2, "pending": 4}
    assert "its queued work is gone; queueing it again" in operator.process.log_path.read_text()
    # Queued once more, not on every run: the new work is in the consumer.
    await asyncio.sleep(2)
    assert len(await queued(js, uid)) == 2
    assert await db.fetchval("SELECT publish_round FROM broadcasts WHERE uid = $1", uid) == 1


async def test_delete_purges_work_and_keeps_the_ledger(
    operator: Operator, kubectl: Kubectl, db: asyncpg.Connection, js: JetStreamContext
) -> None:
    await seed(db, 6)
    apply_secret(kubectl)
    uid = apply_broadcast(kubectl, "gone")
    other = apply_broadcast(kubectl, "stays")
    await eventually(lambda: _when(queued(js, uid), lambda b: len(b) == 3), what="queued")
    await eventually(lambda: _when(queued(js, other), lambda b: len(b) == 3), what="queued")
    kubectl("delete", "broadcast", "gone", "--timeout=20s", timeout=30)
    assert get(kubectl, "gone") == {}
    assert await queued(js, uid) == []
    assert len(await queued(js, other)) == 3
    assert await control(js, uid) is None
    with pytest.raises(NotFoundError):
        await js.consumer_info(subjects.WORK_STREAM, subjects.work_consumer(uid))
    assert await states(db, uid) == {"pending": 6}


class TestRestart:
    @pytest.fixture
    def operator_overrides(self) -> dict[str, str]:
        # Batches of one and a short publish window: many cursor saves to interrupt.
        return {"HERALD_OPERATOR_BATCH_SIZE": "1", "HERALD_OPERATOR_PUBLISH_WINDOW": "20"}

    async def test_restart_mid_publish_resumes_without_duplicates(
        self, operator: Operator, kubectl: Kubectl, db: asyncpg.Connection, js: JetStreamContext
    ) -> None:
        count = 30_000
        await seed(db, count)
        apply_secret(kubectl)
        uid = apply_broadcast(kubectl, "big")

        async def mid_publish() -> bool:
            row = await db.fetchrow(
                "SELECT published_through, published_at FROM broadcasts WHERE uid = $1", uid
            )
            return row is not None and row[0] is not None and row[1] is None

        await eventually(mid_publish, within=60, what="publishing under way")
        operator.restart(kill=True)
        await eventually(
            lambda: _sync(condition(kubectl, "big", "Reconciling").get("reason") == "Sending"),
            within=120,
            what="published after the restart",
        )
        info = await js.stream_info(
            subjects.WORK_STREAM, subjects_filter=subjects.work_subject(uid)
        )
        assert info.state.messages == count
        consumer = await js.consumer_info(subjects.WORK_STREAM, subjects.work_consumer(uid))
        assert consumer.num_pending == count


class TestWaits:
    @pytest.fixture
    def operator_overrides(self) -> dict[str, str]:
        return {"HERALD_OPERATOR_DATABASE_TIMEOUT_SECONDS": "1"}

    async def test_a_ledger_that_does_not_answer_is_reported_then_recovers(
        self, operator: Operator, kubectl: Kubectl, db: asyncpg.Connection
    ) -> None:
        await seed(db, 3)
        apply_secret(kubectl)
        # A lock on the bookkeeping table holds every count, as an exhausted pool or a
        # stuck Postgres would: the reconcile gives up after its time-out and says why.
        async with db.transaction():
            await db.execute("LOCK TABLE broadcasts IN ACCESS EXCLUSIVE MODE")
            uid = apply_broadcast(kubectl, "held")

            async def waiting() -> dict[str, Any]:
                c = condition(kubectl, "held", "Ready")
                return c if c.get("reason") == "WaitingForDatabase" else {}

            ready = await eventually(waiting, what="a Ready condition naming the wait")
            assert ready["status"] == "False"
            assert ready["message"] == (
                "Waiting for Postgres (counting the ledger): no answer within 1 s; retrying."
            )
            body = get(kubectl, "held")
            assert body["status"]["observedGeneration"] == body["metadata"]["generation"]
            assert condition(kubectl, "held", "Reconciling")["status"] == "True"
        await eventually(
            lambda: _sync(get(kubectl, "held")["status"]["phase"] == "Sending"),
            what="sending once Postgres answers",
        )
        assert await states(db, uid) == {"pending": 3}
        assert condition(kubectl, "held", "Ready")["reason"] == "Sending"


class TestErrors:
    @pytest.fixture
    def older_crd(self, kubectl: Kubectl) -> Iterator[None]:
        """The Broadcast CRD without the text length limit, as an older CRD might be: the API
        server then stores a spec the operator refuses. Put back after the test."""
        path = "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/content"
        patch = [{"op": "remove", "path": f"{path}/properties/text/maxLength"}]
        kubectl(
            "patch", "crd", "broadcasts.herald.dev", "--type=json", f"--patch={json.dumps(patch)}"
        )
        try:
            yield
        finally:
            kubectl.install_crds()

    async def test_a_spec_the_operator_cannot_read_is_reported_as_stalled(
        self, operator: Operator, kubectl: Kubectl, older_crd: None
    ) -> None:
        apply_secret(kubectl)
        long_text = {"text": "x" * 5000}

        async def applied() -> bool:
            # The API server takes a moment to serve the changed schema.
            try:
                apply_broadcast(kubectl, "too-long", content=long_text)
            except Exception:
                return False
            return True

        await eventually(applied, what="the API server accepting the longer text")

        async def stalled() -> dict[str, Any]:
            c = condition(kubectl, "too-long", "Stalled")
            return c if c.get("status") == "True" else {}

        cond = await eventually(stalled, what="Stalled")
        assert cond["reason"] == "InvalidSpec"
        assert "spec.content.text: String should have at most 4096 characters" in cond["message"]
        body = get(kubectl, "too-long")
        assert body["status"]["observedGeneration"] == body["metadata"]["generation"]
        assert condition(kubectl, "too-long", "Ready")["status"] == "False"
        assert condition(kubectl, "too-long", "Reconciling")["status"] == "False"
        log = operator.process.log_path
        await eventually(
            lambda: _sync("failed permanently: The spec cannot be read" in log.read_text()),
            what="kopf's permanent error in the log",
        )

        def posted() -> bool:
            out = kubectl(
                "get", "events", "--field-selector=involvedObject.name=too-long", "-o", "json"
            ).stdout
            return any("The spec cannot be read" in e["message"] for e in json.loads(out)["items"])

        await eventually(lambda: _sync(posted()), what="a Warning Event with the problem")

    async def test_a_failing_ledger_is_reported_with_its_error_then_recovers(
        self, operator: Operator, kubectl: Kubectl, db: asyncpg.Connection
    ) -> None:
        await seed(db, 2)
        apply_secret(kubectl)
        # Not a time-out: Postgres answers every count with an error.
        await db.execute("ALTER TABLE broadcasts RENAME TO broadcasts_elsewhere")
        try:
            apply_broadcast(kubectl, "failing")

            async def failing() -> dict[str, Any]:
                c = condition(kubectl, "failing", "Ready")
                return c if c.get("reason") == "WaitingForDatabase" else {}

            ready = await eventually(failing, what="a Ready condition naming the error")
            assert ready["status"] == "False"
            assert ready["message"] == (
                "Waiting for Postgres (counting the ledger): UndefinedTableError: "
                'relation "broadcasts" does not exist; retrying.'
            )
            assert condition(kubectl, "failing", "Reconciling")["status"] == "True"
            log = operator.process.log_path
            await eventually(
                lambda: _sync(
                    "Timer 'resync' failed temporarily: Waiting for Postgres" in log.read_text()
                ),
                what="kopf's temporary error in the log",
            )
        finally:
            await db.execute("ALTER TABLE broadcasts_elsewhere RENAME TO broadcasts")
        # Retried with a backoff that doubles from the timer's period: back within seconds.
        await eventually(
            lambda: _sync(condition(kubectl, "failing", "Ready").get("reason") == "Sending"),
            what="sending once the table is back",
        )


class TestSweep:
    @pytest.fixture
    def operator_overrides(self) -> dict[str, str]:
        return {"HERALD_OPERATOR_SWEEP_SECONDS": "0.5"}

    async def test_control_records_without_a_broadcast_are_stopped(
        self, operator: Operator, kubectl: Kubectl, db: asyncpg.Connection, js: JetStreamContext
    ) -> None:
        # What a deletion leaves behind when NATS did not answer within its timeout.
        await seed(db, 2)
        apply_secret(kubectl)
        uid = apply_broadcast(kubectl, "alive")
        record = await eventually(lambda: control(js, uid), what="the control record")
        kv = await js.key_value(subjects.CONTROL_BUCKET)
        orphan = record.model_copy(update={"uid": f"{uid}-orphan", "name": "deleted"})
        foreign = record.model_copy(update={"uid": f"{uid}-foreign", "namespace": "elsewhere"})
        for left in (orphan, foreign):
            await kv.put(subjects.control_key(left.uid), envelopes.encode(left))

        async def orphan_gone() -> bool:
            return await control(js, orphan.uid) is None

        await eventually(orphan_gone, within=15, what="the orphaned record to be stopped")
        # Another operator's namespace and a live Broadcast are not this sweep's business.
        assert await control(js, foreign.uid) == foreign
        assert await control(js, uid) is not None
        await kv.purge(subjects.control_key(foreign.uid))


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The operator's /metrics, as {(sample name, sorted labels): value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


class TestObservability:
    @pytest.fixture
    def metrics_port(self) -> int:
        return free_port()

    @pytest.fixture
    def operator_overrides(self, metrics_port: int) -> dict[str, str]:
        return {"HERALD_OPERATOR_METRICS_PORT": str(metrics_port), "HERALD_LOG_FORMAT": "json"}

    async def test_a_finished_broadcast_costs_no_timer_work(
        self, operator: Operator, kubectl: Kubectl, db: asyncpg.Connection, metrics_port: int
    ) -> None:
        await seed(db, 2)
        apply_secret(kubectl)
        uid = apply_broadcast(kubectl, "done-soon")
        broadcast = (("controller", "broadcast"),)

        def runs() -> float:
            return scrape(metrics_port).get(
                ("herald_operator_reconcile_time_seconds_count", broadcast), 0.0
            )

        await eventually(
            lambda: _sync(get(kubectl, "done-soon").get("status", {}).get("phase") == "Sending"),
            what="Sending",
        )
        before = runs()
        await asyncio.sleep(3)  # six timer periods
        assert runs() >= before + 2  # the resync timer runs while the Broadcast sends
        await db.execute(
            "UPDATE deliveries SET state = 'delivered', finished_at = now() "
            "WHERE broadcast_uid = $1",
            uid,
        )
        await eventually(
            lambda: _sync(condition(kubectl, "done-soon", "Complete").get("status") == "True"),
            what="Complete",
        )
        await asyncio.sleep(1)  # the watch event of the final status reaches kopf
        settled = runs()
        await asyncio.sleep(3)  # six timer periods
        assert runs() == settled
        # A spec change wakes it once, to write the new observedGeneration, then it rests.
        kubectl("patch", "bc", "done-soon", "--type=merge", "-p", '{"spec":{"paused":true}}')
        body = await eventually(
            lambda: _sync(
                (b := get(kubectl, "done-soon"))["status"]["observedGeneration"]
                == b["metadata"]["generation"]
                and b
            ),
            what="the new generation observed",
        )
        assert body["status"]["phase"] == "Completed"
        await asyncio.sleep(1)
        woken = runs()
        await asyncio.sleep(3)
        assert runs() == woken

    async def test_metrics_follow_a_broadcast_and_logs_are_json(
        self, operator: Operator, kubectl: Kubectl, db: asyncpg.Connection, metrics_port: int
    ) -> None:
        namespace = str(kubectl.namespace)
        await seed(db, 3)
        apply_secret(kubectl)
        uid = apply_broadcast(kubectl, "watched", rate={"messagesPerSecond": 7})

        def sample(metric: str, **labels: str) -> float | None:
            return scrape(metrics_port).get((metric, tuple(sorted(labels.items()))))

        ours = {"namespace": namespace, "name": "watched"}

        async def sending() -> bool:
            return (
                sample("herald_broadcast_phase", phase="Sending", **ours) == 1
                and sample("herald_broadcast_recipients", state="pending", **ours) == 3
            )

        await eventually(sending, what="the Broadcast's series while it sends")
        assert sample("herald_broadcasts", phase="Sending") == 1
        assert sample("herald_broadcast_rate_limit", **ours) == 7
        assert (
            sample("herald_broadcast_status_condition", type="Reconciling", status="True", **ours)
            == 1
        )
        assert (
            sample("herald_broadcast_status_condition", type="Reconciling", status="False", **ours)
            == 0
        )
        broadcast = {"controller": "broadcast"}
        assert (sample("herald_operator_reconcile_total", result="requeue", **broadcast) or 0) >= 1
        assert sample("herald_operator_reconcile_total", result="error", **broadcast) == 0
        assert sample("herald_operator_reconcile_errors_total", **broadcast) == 0
        assert (sample("herald_operator_reconcile_time_seconds_count", **broadcast) or 0) >= 1
        await eventually(
            lambda: _sync((sample("herald_operator_work_published_recipients_total") or 0) >= 3),
            what="published recipients",
        )
        assert (sample("herald_operator_work_published_batches_total") or 0) >= 2
        assert (sample("herald_operator_audience_materialise_seconds_count") or 0) >= 1

        await db.execute(
            "UPDATE deliveries SET state = 'delivered', finished_at = now() "
            "WHERE broadcast_uid = $1",
            uid,
        )

        async def completed() -> bool:
            return sample("herald_broadcasts", phase="Completed") == 1

        await eventually(completed, what="herald_broadcasts{phase=Completed}")
        assert sample("herald_broadcasts", phase="Sending") == 0
        # A finished Broadcast keeps no series of its own.
        assert sample("herald_broadcast_rate_limit", **ours) is None
        assert sample("herald_broadcast_recipients", state="pending", **ours) is None
        assert (sample("herald_operator_reconcile_total", result="success", **broadcast) or 0) >= 1

        kubectl("delete", "broadcast", "watched", "--timeout=20s", timeout=30)
        await eventually(
            lambda: _sync(sample("herald_broadcasts", phase="Completed") == 0),
            what="the deleted Broadcast forgotten",
        )

        lines = [
            json.loads(line)
            for line in operator.process.log_path.read_text().splitlines()
            if line.startswith("{")
        ]
        assert lines, operator.process.tail(20)
        assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
        about = [line for line in lines if line.get("name") == "watched"]
        assert about, "no log line names the Broadcast"
        assert all(line["namespace"] == namespace for line in about)
        assert any(line["logger"].startswith("kopf") for line in about)
        assert any(line["logger"].startswith("herald.operator") for line in about)


# --- transactional messages ----------------------------------------------------------------


async def published_bot(js: JetStreamContext, namespace: str, name: str) -> BotRecord | None:
    kv = await js.key_value(subjects.CONTROL_BUCKET)
    try:
        entry = await kv.get(subjects.bot_record_key(namespace, name))
    except KeyNotFoundError:
        return None
    return envelopes.decode(BotRecord, entry.value) if entry.value else None


def bot_ready(kubectl: Kubectl, name: str) -> dict[str, Any]:
    body = json.loads(kubectl("get", "bot", name, "-o", "json").stdout)
    conditions = body.get("status", {}).get("conditions", [])
    return dict(conditions[0]) if conditions else {}


class TestTransactional:
    """The operator's part: BotRecord v2, the consumer of messages, replicas kept for recent
    traffic, and the sweep of the messages table. The tests play herald-api (the rows, the
    traffic records) and the sender (claims) in SQL and KV."""

    @pytest.fixture
    def operator_overrides(self) -> dict[str, str]:
        return {
            "HERALD_OPERATOR_TRANSACTIONAL_WINDOW_SECONDS": "4",
            "HERALD_OPERATOR_MESSAGE_CLAIM_TTL_SECONDS": "30",
            "HERALD_OPERATOR_MESSAGE_SWEEP_SECONDS": "0.5",
        }

    async def test_a_bot_is_published_with_its_limits_its_callback_secret_and_its_consumer(
        self, operator: Operator, kubectl: Kubectl, js: JetStreamContext
    ) -> None:
        namespace = str(kubectl.namespace)
        apply_secret(kubectl)
        limits = {"messagesPerSecond": 20, "paid": {"enabled": True, "starsPerDay": 50}}
        callbacks = {"secretRef": {"name": "shop-callbacks", "key": "secret"}}
        manifest = bot_manifest("shop", "shop-bot", limits=limits, callbacks=callbacks)
        kubectl("apply", "-f", "-", input=json.dumps(manifest))

        async def refused() -> dict[str, Any]:
            ready = bot_ready(kubectl, "shop")
            return ready if ready.get("status") == "False" else {}

        ready = await eventually(refused, what="Ready False for the missing callback secret")
        assert ready["reason"] == "CallbackSecretNotFound"
        assert "'shop-callbacks'" in ready["message"] and "'secret'" in ready["message"]
        assert await published_bot(js, namespace, "shop") is None

        kubectl("create", "secret", "generic", "shop-callbacks", "--from-literal=secret=too-short")
        ready = await eventually(
            lambda: _when(_sync(bot_ready(kubectl, "shop")), lambda r: "Short" in r["reason"]),
            what="CallbackSecretTooShort",
        )
        assert ready["status"] == "False"
        assert "9 bytes" in ready["message"]

        secret = "s" * 40
        kubectl("delete", "secret", "shop-callbacks")
        kubectl("create", "secret", "generic", "shop-callbacks", f"--from-literal=secret={secret}")
        record = await eventually(
            lambda: published_bot(js, namespace, "shop"), what="the Bot's record"
        )
        assert bot_ready(kubectl, "shop")["reason"] == "Verified"
        ring = KeyRing.parse(keys.token_keys())
        assert record.v == 2
        assert record.bot_id == BOT_ID
        assert record.open_token(ring) == TOKEN
        assert record.open_callback_secret(ring) == secret
        assert secret not in (record.callback_secret or "")
        assert record.limits == SendLimits(
            messages_per_second=20, paid_messages_per_second=1000, stars_per_day=50
        )
        consumer = await js.consumer_info(
            subjects.MESSAGES_STREAM, subjects.message_consumer(BOT_ID)
        )
        assert consumer.config.filter_subject == subjects.message_subject(BOT_ID)
        assert consumer.config.ack_policy == AckPolicy.EXPLICIT
        assert consumer.config.ack_wait == 10.0

    async def test_recent_traffic_keeps_a_sender_replica_and_none_without(
        self, operator: Operator, kubectl: Kubectl, js: JetStreamContext
    ) -> None:
        sender_deployment(kubectl)
        kv = await js.key_value(subjects.CONTROL_BUCKET)
        # What herald-api writes when it takes a message; a long-quiet bot's record beside.
        for bot_id, ago in ((BOT_ID, 0), (OTHER_BOT_ID, 3600)):
            traffic = BotTraffic(
                bot_id=bot_id,
                namespace="shop",
                name=f"bot-{bot_id}",
                at=datetime.now(UTC) - timedelta(seconds=ago),
            )
            await kv.put(subjects.bot_traffic_key(bot_id), envelopes.encode(traffic))
        await eventually(lambda: _sync(replicas(kubectl) == 1), what="a replica for the traffic")
        # Four seconds of window, then no bot has traffic: back to zero.
        await eventually(lambda: _sync(replicas(kubectl) == 0), what="zero once it is old")

    async def test_the_sweep_settles_stale_claims_and_messages_past_their_deadline(
        self, operator: Operator, db: asyncpg.Connection
    ) -> None:
        # (state, claimed that many seconds from now, deadline that many seconds from now)
        rows = {
            "stale": ("claimed", -60.0, None),
            "live": ("claimed", 0.0, None),
            "late": ("pending", None, -1.0),
            "in-time": ("pending", None, 3600.0),
            "no-deadline": ("pending", None, None),
        }
        for key, (state, claimed, deadline) in rows.items():
            await db.execute(
                "INSERT INTO messages (id, namespace, bot, bot_id, idempotency_key, "
                "fingerprint, chat_id, content, state, claimed_by, claimed_at, deadline, "
                "callback_url) VALUES (gen_random_uuid(), 'shop', 'shop', $1, $2, '\\x00', 1, "
                "'{\"text\": \"hi\"}', $3, 'sender-a', now() + make_interval(secs => $4), "
                "now() + make_interval(secs => $5), 'http://127.0.0.1:9/cb')",
                BOT_ID,
                key,
                state,
                claimed,
                deadline,
            )

        async def settled() -> dict[str, tuple[str, str | None, str | None]]:
            found = {
                r["idempotency_key"]: (r["state"], r["reason"], r["callback_state"])
                for r in await db.fetch(
                    "SELECT idempotency_key, state, reason, callback_state FROM messages"
                )
            }
            return found if found["stale"][0] != "claimed" and found["late"][0] != "pending" else {}

        assert await eventually(settled, what="the sweep") == {
            "stale": ("uncertain", "SenderLost", "pending"),
            "live": ("claimed", None, None),
            "late": ("failed", "DeadlineExceeded", "pending"),
            "in-time": ("pending", None, None),
            "no-deadline": ("pending", None, None),
        }


class TestRetention:
    @pytest.fixture
    def metrics_port(self) -> int:
        return free_port()

    @pytest.fixture
    def operator_overrides(self, metrics_port: int) -> dict[str, str]:
        return {
            "HERALD_LEDGER_RETENTION_DAYS": "1",
            "HERALD_LEDGER_RETENTION_INTERVAL_SECONDS": "0.5",
            "HERALD_LEDGER_RETENTION_BATCH": "2",
            "HERALD_OPERATOR_METRICS_PORT": str(metrics_port),
        }

    async def test_an_old_ledger_goes_and_its_broadcast_keeps_its_status(
        self, operator: Operator, kubectl: Kubectl, db: asyncpg.Connection, metrics_port: int
    ) -> None:
        await seed(db, 5)
        apply_secret(kubectl)
        old = apply_broadcast(kubectl, "old")
        running = apply_broadcast(kubectl, "running")

        async def materialised() -> bool:
            return sum((await states(db, old)).values()) == 5 and bool(await states(db, running))

        await eventually(materialised, what="both ledgers")
        # Play the sender: the old one is done, with one press; the running one half-way.
        await db.execute(
            "UPDATE deliveries SET state = 'delivered', finished_at = now() "
            "WHERE broadcast_uid = $1",
            old,
        )
        await db.execute(
            "INSERT INTO clicks (broadcast_uid, chat_id, callback) VALUES ($1, 1000, 'yes')", old
        )
        await db.execute(
            "UPDATE deliveries SET state = 'delivered', finished_at = now() "
            "WHERE broadcast_uid = $1 AND chat_id < 1002",
            running,
        )
        kubectl("wait", "--for=condition=Complete", "broadcast/old", "--timeout=20s", timeout=30)
        # Both two days old; only the completed one is past the retention.
        await db.execute(
            "UPDATE broadcasts SET created_at = now() - interval '2 days', "
            "completed_at = CASE WHEN completed_at IS NULL THEN NULL "
            "ELSE now() - interval '2 days' END"
        )
        await db.execute(
            "UPDATE deliveries SET created_at = now() - interval '2 days', "
            "finished_at = finished_at - interval '2 days'"
        )

        async def removed() -> Any:
            return await db.fetchval("SELECT ledger_removed_at FROM broadcasts WHERE uid = $1", old)

        await eventually(removed, what="the old ledger removed")
        assert await states(db, old) == {}
        assert await db.fetchval("SELECT count(*) FROM clicks WHERE broadcast_uid = $1", old) == 0
        assert await states(db, running) == {"delivered": 2, "pending": 3}
        samples = scrape(metrics_port)
        assert (
            samples[("herald_operator_retention_removed_rows_total", (("table", "deliveries"),))]
            == 5
        )
        assert (
            samples[("herald_operator_retention_removed_rows_total", (("table", "clicks"),))] == 1
        )
        assert samples[("herald_operator_retention_removed_ledgers_total", ())] == 1

        # A spec change after the removal: reconciled from the counts kept, never
        # materialised again, the status as it was.
        before = get(kubectl, "old")["status"]
        kubectl("patch", "broadcast", "old", "--type=merge", "-p", '{"spec":{"paused":true}}')

        async def seen() -> dict[str, Any]:
            body = get(kubectl, "old")
            status = body.get("status", {})
            return (
                status if status.get("observedGeneration") == body["metadata"]["generation"] else {}
            )

        after = await eventually(seen, what="the change reconciled")
        assert (after["total"], after["delivered"], after["pending"]) == (5, 5, 0)
        assert after["delivered"] == before["delivered"]
        assert condition(kubectl, "old", "Complete")["status"] == "True"
        assert await states(db, old) == {}


# --- preview, send again, spread ---------------------------------------------------------


def status_of(kubectl: Kubectl, name: str) -> dict[str, Any]:
    return dict(get(kubectl, name).get("status", {}))


async def test_a_dry_run_previews_then_sends_when_turned_off(
    operator: Operator, kubectl: Kubectl, db: asyncpg.Connection, js: JetStreamContext
) -> None:
    await seed(db, 5)  # 1000..1004, en
    await db.execute(
        "INSERT INTO subscribers (bot_id, chat_id, language_code, is_active) VALUES "
        "($1, 2000, 'en', false), ($1, 2001, 'ru', true), ($1, 2002, 'ru-ua', true)",
        BOT_ID,
    )
    apply_secret(kubectl)
    uid = apply_broadcast(
        kubectl,
        "preview",
        dryRun=True,
        content={"text": "Sale", "localized": {"ru": {"text": "Скидки"}}},
        # 2000 blocked the bot: excluded even when listed; 3000 is no subscriber; 1000 twice.
        audience={"subscribers": {}, "chatIds": [1000, 2000, 3000]},
        rate={"messagesPerSecond": 2},
    )
    preview = await eventually(
        lambda: _sync(status_of(kubectl, "preview").get("preview")), what="the preview"
    )
    assert preview["recipients"] == 8
    assert preview["variants"] == {"default": 6, "ru": 2}
    assert (preview["messagesPerSecond"], preview["estimatedDuration"]) == (2.0, "4s")
    assert "stars" not in preview
    status = status_of(kubectl, "preview")
    assert status["phase"] == "DryRun"
    assert condition(kubectl, "preview", "DryRun")["status"] == "True"
    # Healthy, not in progress: kstatus, Argo CD and `kubectl wait` can read a pull request's
    # apply at once.
    assert condition(kubectl, "preview", "Ready")["status"] == "True"
    assert condition(kubectl, "preview", "Reconciling")["status"] == "False"
    waited = kubectl(
        "wait", "--for=condition=Ready", "broadcast/preview", "--timeout=10s", timeout=20
    )
    assert "condition met" in waited.stdout
    # Nothing materialised, queued or announced to senders.
    assert await db.fetchval("SELECT count(*) FROM deliveries WHERE broadcast_uid = $1", uid) == 0
    assert await db.fetchval("SELECT count(*) FROM broadcasts WHERE uid = $1", uid) == 0
    assert await control(js, uid) is None

    kubectl("patch", "broadcast", "preview", "--type=merge", "-p", '{"spec":{"dryRun":false}}')
    assert await eventually(
        lambda: _when(states(db, uid), lambda s: s.get("pending") == 8), what="the ledger"
    )
    record = await eventually(lambda: control(js, uid), what="the control record")
    assert record.rate.messages_per_second == 2.0
    await db.execute(
        "UPDATE deliveries SET state = 'delivered', finished_at = now() WHERE broadcast_uid = $1",
        uid,
    )
    waited = kubectl(
        "wait", "--for=condition=Complete", "broadcast/preview", "--timeout=20s", timeout=30
    )
    assert "condition met" in waited.stdout
    status = status_of(kubectl, "preview")
    assert (status["delivered"], status["total"]) == (8, 8)
    assert "preview" not in status
    assert condition(kubectl, "preview", "DryRun")["status"] == "False"


async def test_from_broadcast_sends_again_to_those_who_did_not_get_it(
    operator: Operator, kubectl: Kubectl, db: asyncpg.Connection, js: JetStreamContext
) -> None:
    await seed(db, 6)  # 1000..1005
    apply_secret(kubectl)
    first = apply_broadcast(kubectl, "first")
    assert await eventually(
        lambda: _when(states(db, first), lambda s: s.get("pending") == 6), what="first's ledger"
    )
    again = {"fromBroadcast": {"name": "first", "states": ["failed", "uncertain"]}}
    # While the source still sends, its ledger is not read.
    apply_broadcast(kubectl, "again", audience={**again, "chatIds": [1001, 3000]})
    waiting = await eventually(
        lambda: _sync(condition(kubectl, "again", "Reconciling")), what="again waits"
    )
    assert waiting["reason"] == "WaitingForSourceBroadcast"

    # Play the sender: the outcomes of the first broadcast, and 1004 blocking the bot since.
    await db.execute(
        "UPDATE deliveries SET finished_at = now(), state = CASE chat_id "
        "WHEN 1000 THEN 'delivered' WHEN 1001 THEN 'failed' WHEN 1002 THEN 'uncertain' "
        "WHEN 1003 THEN 'blocked' WHEN 1004 THEN 'failed' ELSE 'uncertain' END "
        "WHERE broadcast_uid = $1",
        first,
    )
    await db.execute(
        "UPDATE subscribers SET is_active = false WHERE bot_id = $1 AND chat_id IN (1003, 1004)",
        BOT_ID,
    )
    kubectl("wait", "--for=condition=Complete", "broadcast/first", "--timeout=20s", timeout=30)

    again_uid = str(kubectl("get", "broadcast", "again", "-o", "jsonpath={.metadata.uid}").stdout)

    async def chats() -> list[int]:
        rows = await db.fetch(
            "SELECT chat_id FROM deliveries WHERE broadcast_uid = $1 ORDER BY chat_id", again_uid
        )
        return [r["chat_id"] for r in rows]

    # failed or uncertain and still active (1001, 1002, 1005), with the listed ids (1001
    # again, deduplicated; 3000, no subscriber): not 1000 (delivered), 1003 and 1004 (blocked).
    assert await eventually(chats, what="again's ledger") == [1001, 1002, 1005, 3000]
    assert await eventually(
        lambda: _sync(status_of(kubectl, "again").get("total") == 4), what="again's total"
    )


async def test_from_broadcast_names_a_missing_or_another_bots_broadcast(
    operator: Operator, kubectl: Kubectl, db: asyncpg.Connection
) -> None:
    await seed(db, 2)
    apply_secret(kubectl)
    apply_secret(kubectl, "other-bot", "777777:other-bot")
    apply_broadcast(kubectl, "theirs", botRef={"name": "other-bot"})
    states_ = ["failed"]
    apply_broadcast(
        kubectl, "orphan", audience={"fromBroadcast": {"name": "gone", "states": states_}}
    )
    apply_broadcast(
        kubectl, "mixed", audience={"fromBroadcast": {"name": "theirs", "states": states_}}
    )
    apply_broadcast(
        kubectl, "selfish", audience={"fromBroadcast": {"name": "selfish", "states": states_}}
    )
    apply_broadcast(kubectl, "preview", dryRun=True)
    apply_broadcast(
        kubectl, "of-preview", audience={"fromBroadcast": {"name": "preview", "states": states_}}
    )

    async def stalled(name: str) -> dict[str, Any]:
        c = condition(kubectl, name, "Stalled")
        return c if c.get("status") == "True" else {}

    orphan = await eventually(lambda: stalled("orphan"), what="orphan stalls")
    assert orphan["reason"] == "SourceBroadcastNotFound"
    assert "'gone'" in orphan["message"]
    mixed = await eventually(lambda: stalled("mixed"), what="mixed stalls")
    assert mixed["reason"] == "SourceBroadcastOtherBot"
    assert "'shop-bot'" in mixed["message"]
    # Neither would ever finish, so waiting for them would wait forever.
    selfish = await eventually(lambda: stalled("selfish"), what="selfish stalls")
    assert selfish["reason"] == "SourceBroadcastUnusable"
    assert "itself ('selfish')" in selfish["message"]
    of_preview = await eventually(lambda: stalled("of-preview"), what="of-preview stalls")
    assert of_preview["reason"] == "SourceBroadcastUnusable"
    assert "'preview', a dry run" in of_preview["message"]
    for name in ("orphan", "mixed", "selfish", "of-preview"):
        uid = str(kubectl("get", "broadcast", name, "-o", "jsonpath={.metadata.uid}").stdout)
        assert (
            await db.fetchval("SELECT count(*) FROM deliveries WHERE broadcast_uid = $1", uid) == 0
        )


async def test_a_spread_paces_at_audience_over_duration(
    operator: Operator, kubectl: Kubectl, db: asyncpg.Connection, js: JetStreamContext
) -> None:
    await seed(db, 36)
    apply_secret(kubectl)
    before = datetime.now(UTC)
    uid = apply_broadcast(kubectl, "spread", rate={"messagesPerSecond": 20, "spreadOver": "1h"})
    record = await eventually(
        lambda: _when(control(js, uid), lambda r: r.state is BroadcastState.ACTIVE),
        what="an active control record",
    )
    # 36 recipients over an hour: 0.01 per second, far under the spec's 20.
    assert record.rate.messages_per_second == 0.01
    status = await eventually(
        lambda: _sync(
            status_of(kubectl, "spread") if status_of(kubectl, "spread").get("eta") else None
        ),
        what="an ETA",
    )
    assert status["effectiveRate"] == 0.01
    eta = datetime.fromisoformat(status["eta"])
    assert (
        before + timedelta(minutes=59) <= eta <= datetime.now(UTC) + timedelta(hours=1, seconds=1)
    )
