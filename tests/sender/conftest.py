"""A broadcast pipeline set up exactly as the operator sets it up: ledger rows, the durable
work consumer, work batches and the control record; transactional messages as the operator
and herald-api set them up: the Bot's record, its durable consumer, the message's row, its
work and the bot's traffic; plus senders, in this process or as real ``herald-sender``
processes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic import SecretStr

from herald.core import streams, subjects
from herald.core.broadcasts import Delivery
from herald.core.contents import Content
from herald.core.envelopes import (
    BotRecord,
    BotTraffic,
    BroadcastState,
    ControlRecord,
    FaultRecord,
    MessageOutcome,
    MessageWork,
    Recipient,
    SendLimits,
    SendRate,
    WorkBatch,
    decode,
    encode,
)
from herald.core.permissions import Component
from herald.core.settings import DatabaseSettings, TelegramSettings
from herald.dev import keys
from herald.dev.nats import NatsAccess
from herald.dev.processes import ManagedProcess
from herald.emulator import EmulatorClient, RunningEmulator
from herald.sender.metrics import Metrics
from herald.sender.running import Sender
from herald.sender.settings import Config, SenderSettings

TOKEN = "123456:sender-test-token"
BOT_ID = "123456"
# Short timings so crashes and takeovers play out in seconds.
FAST = {
    "claim_ttl_seconds": 3.0,
    "request_timeout_seconds": 2.0,
    "lease_seconds": 2.0,
    "shutdown_seconds": 10.0,
    "metrics_port": 0,
    "health_port": 0,
}
ACK_WAIT = 3.0


class Pipeline:
    def __init__(self, nats: NatsAccess, dsn: str, emulator: RunningEmulator, logs: Path) -> None:
        self.nats = nats
        self.nats_url = nats.url  # the admin's: this pipeline plays the operator
        self.dsn = dsn
        self.emulator = emulator
        self.client = EmulatorClient(emulator.url)
        self.logs = logs
        self.records: dict[str, ControlRecord] = {}
        self.processes: list[ManagedProcess] = []

    async def start(self) -> None:
        self.nc = await nats.connect(self.nats_url)
        self.js = self.nc.jetstream()
        await streams.ensure_work_stream(self.js)
        await streams.ensure_messages_stream(self.js)
        self.kv = await streams.ensure_control_bucket(self.js)
        self.db = await asyncpg.connect(self.dsn)

    async def close(self) -> None:
        for process in self.processes:
            process.stop(timeout=5)
        await self.client.close()
        await self.db.close()
        await self.nc.close()

    # --- what the operator does -----------------------------------------------------

    async def seed(
        self,
        uid: str,
        chat_ids: Iterable[int],
        *,
        language: str | None = None,
        bot_id: str = BOT_ID,
    ) -> list[int]:
        """Subscribers of the bot and pending ledger rows for `chat_ids`."""
        chats = sorted(chat_ids)
        await self.db.executemany(
            "INSERT INTO subscribers (bot_id, chat_id, first_name, language_code) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            [(bot_id, chat, f"User{chat}", language) for chat in chats],
        )
        await self.db.executemany(
            "INSERT INTO deliveries (broadcast_uid, chat_id) VALUES ($1, $2)",
            [(uuid.UUID(uid), chat) for chat in chats],
        )
        return chats

    async def open(
        self,
        chat_ids: Iterable[int],
        *,
        rate: float = 50,
        paid: bool = False,
        content: dict[str, Any] | None = None,
        delivery: Delivery = Delivery.AT_MOST_ONCE,
        batch: int = 100,
        token: str = TOKEN,
        stars_budget: int | None = None,
        limits: SendLimits | None = None,
    ) -> str:
        """A new active broadcast to `chat_ids`, fully published; returns its uid."""
        uid = str(uuid.uuid4())
        chats = await self.seed(uid, chat_ids, bot_id=token.partition(":")[0])
        await self.js.add_consumer(
            subjects.WORK_STREAM,
            ConsumerConfig(
                durable_name=subjects.work_consumer(uid),
                filter_subject=subjects.work_subject(uid),
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=ACK_WAIT,
            ),
        )
        for start in range(0, len(chats), batch):
            work = WorkBatch(
                uid=uid,
                recipients=[Recipient(c, None, f"User{c}") for c in chats[start : start + batch]],
            )
            await self.js.publish(
                subjects.work_subject(uid), encode(work), headers={"Nats-Msg-Id": work.msg_id(0)}
            )
        record = ControlRecord(
            uid=uid,
            namespace="default",
            name=f"b-{uid[:8]}",
            generation=1,
            bot_id=token.partition(":")[0],
            token=keys.seal(token, bound_to=uid),
            content=Content.model_validate(content or {"text": "Hello <b>{first_name}</b>"}),
            rate=SendRate(
                messages_per_second=rate, allow_paid_broadcast=paid, stars_budget=stars_budget
            ),
            delivery=delivery,
            state=BroadcastState.ACTIVE,
            limits=limits,
        )
        await self.put(record)
        return uid

    async def put(self, record: ControlRecord) -> None:
        self.records[record.uid] = record
        await self.kv.put(subjects.control_key(record.uid), encode(record))

    async def set_state(self, uid: str, state: BroadcastState) -> None:
        await self.put(self.records[uid].model_copy(update={"state": state}))

    async def fault(self, uid: str) -> FaultRecord | None:
        try:
            entry = await self.kv.get(subjects.fault_key(uid))
        except nats.js.errors.KeyNotFoundError:
            return None
        assert entry.value is not None
        return decode(FaultRecord, entry.value)

    async def states(self, uid: str) -> Counter[str]:
        rows = await self.db.fetch(
            "SELECT state, count(*) AS n FROM deliveries WHERE broadcast_uid = $1 GROUP BY state",
            uuid.UUID(uid),
        )
        return Counter({row["state"]: row["n"] for row in rows})

    # --- what the operator and herald-api do for transactional messages --------------

    async def bot(
        self,
        *,
        token: str = TOKEN,
        namespace: str = "default",
        name: str = "shop",
        limits: SendLimits | None = None,
    ) -> BotRecord:
        """A verified Bot, as the operator publishes it, with its consumer of messages."""
        bot_id = token.partition(":")[0]
        key = subjects.bot_record_key(namespace, name)
        record = BotRecord(
            namespace=namespace,
            name=name,
            generation=1,
            bot_id=bot_id,
            username=f"{name}_bot",
            token=keys.seal(token, bound_to=key),
            limits=limits,
        )
        await self.js.add_consumer(
            subjects.MESSAGES_STREAM,
            ConsumerConfig(
                durable_name=subjects.message_consumer(bot_id),
                filter_subject=subjects.message_subject(bot_id),
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=ACK_WAIT,
                max_deliver=-1,
            ),
        )
        await self.kv.put(key, encode(record))
        return record

    async def message(
        self,
        chat_id: int,
        *,
        text: str = "Your order has shipped",
        deadline: datetime | None = None,
        callback_url: str | None = None,
        bot: BotRecord,
        traffic: bool = True,
    ) -> str:
        """Play herald-api taking one message: its row, its work under its id, and the bot's
        traffic (herald-api writes it at most every few seconds; here every time)."""
        message_id = str(uuid.uuid4())
        content = Content.model_validate({"text": text})
        await self.db.execute(
            "INSERT INTO messages (id, namespace, bot, bot_id, idempotency_key, fingerprint, "
            "chat_id, content, deadline, callback_url) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10)",
            uuid.UUID(message_id),
            bot.namespace,
            bot.name,
            bot.bot_id,
            f"key-{message_id}",
            b"fingerprint",
            chat_id,
            json.dumps(content.model_dump(mode="json", exclude_none=True)),
            deadline,
            callback_url,
        )
        work = MessageWork(
            id=message_id,
            namespace=bot.namespace,
            bot=bot.name,
            chat_id=chat_id,
            content=content,
            deadline=deadline,
        )
        await self.js.publish(
            subjects.message_subject(bot.bot_id),
            encode(work),
            headers={"Nats-Msg-Id": message_id},
        )
        if traffic:
            await self.traffic(bot)
        return message_id

    async def traffic(self, bot: BotRecord, *, ago: float = 0.0) -> None:
        at = datetime.now(UTC) - timedelta(seconds=ago)
        record = BotTraffic(bot_id=bot.bot_id, namespace=bot.namespace, name=bot.name, at=at)
        await self.kv.put(subjects.bot_traffic_key(bot.bot_id), encode(record))

    async def message_row(self, message_id: str) -> dict[str, Any]:
        row = await self.db.fetchrow("SELECT * FROM messages WHERE id = $1", uuid.UUID(message_id))
        assert row is not None
        return dict(row)

    async def wait_message_final(self, message_id: str, *, within: float) -> dict[str, Any]:
        async def final() -> bool:
            row = await self.message_row(message_id)
            return row["state"] not in ("pending", "claimed")

        await self.wait_for(final, within=within, what=f"message {message_id} to end")
        return await self.message_row(message_id)

    @contextlib.asynccontextmanager
    async def outcomes(self, bot_id: str = BOT_ID) -> AsyncIterator[list[MessageOutcome]]:
        """The outcomes announced for the bot while the block runs, as herald-api hears them."""
        heard: list[MessageOutcome] = []

        async def hear(msg: Any) -> None:
            heard.append(decode(MessageOutcome, msg.data))

        sub = await self.nc.subscribe(subjects.outcome_subject(bot_id), cb=hear)
        try:
            yield heard
        finally:
            await sub.unsubscribe()

    async def queued_messages(self, bot_id: str = BOT_ID) -> int:
        info = await self.js.consumer_info(
            subjects.MESSAGES_STREAM, subjects.message_consumer(bot_id)
        )
        return int(info.num_pending + info.num_ack_pending)

    async def pending_work(self, uid: str) -> int:
        info = await self.js.consumer_info(subjects.WORK_STREAM, subjects.work_consumer(uid))
        return int(info.num_pending + info.num_ack_pending)

    async def wait_for(
        self, check: Callable[[], Any], *, within: float, what: str, interval: float = 0.1
    ) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if await check():
                return
            await asyncio.sleep(interval)
        raise AssertionError(f"timed out after {within}s waiting for {what}")

    async def wait_done(self, uid: str, *, within: float) -> Counter[str]:
        """Every row terminal and every work message acked."""

        async def done() -> bool:
            states = await self.states(uid)
            open_rows = states["pending"] + states["claimed"] + states["sending"]
            return open_rows == 0 and await self.pending_work(uid) == 0

        await self.wait_for(done, within=within, what=f"broadcast {uid} to finish")
        return await self.states(uid)

    # --- senders ----------------------------------------------------------------------

    def config(self, **sender: Any) -> Config:
        return Config(
            sender=SenderSettings(**(FAST | sender)),
            nats=self.nats.settings(Component.SENDER),
            database=DatabaseSettings(url=SecretStr(self.dsn)),
            telegram=TelegramSettings(api_url=self.emulator.url),
        )

    @contextlib.asynccontextmanager
    async def sender(self, **sender: Any) -> AsyncIterator[Sender]:
        """A sender in this process, stopped (as by SIGTERM) when the block ends."""
        running = Sender(self.config(**sender), metrics=Metrics())
        stopping = asyncio.Event()
        task = asyncio.create_task(running.run(stopping))
        try:
            yield running
        finally:
            stopping.set()
            await asyncio.wait_for(task, 30)

    def process(self, name: str, **sender: Any) -> ManagedProcess:
        """A real `herald-sender` process."""
        env = {
            **os.environ,
            **self.nats.env(Component.SENDER),
            "HERALD_DATABASE_URL": self.dsn,
            "HERALD_TELEGRAM_API_URL": self.emulator.url,
            "HERALD_SENDER_ID": name,
        }
        for key, value in (FAST | sender).items():
            env[f"HERALD_SENDER_{key.upper()}"] = str(value)
        executable = Path(sys.executable).parent / "herald-sender"
        process = ManagedProcess(name, [str(executable)], self.logs / f"{name}.log", env=env)
        self.processes.append(process.start())
        return process


@pytest.fixture
async def pipeline(
    nats_access: NatsAccess, database: str, emulator: RunningEmulator, tmp_path: Path
) -> AsyncIterator[Pipeline]:
    pipe = Pipeline(nats_access, database, emulator, tmp_path)
    await pipe.start()
    try:
        yield pipe
    finally:
        await pipe.close()


def now() -> datetime:
    return datetime.now(UTC)
