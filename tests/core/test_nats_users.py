"""Each component's NATS user on a real nats-server run with herald.core.permissions: what the
component needs works, what it must not do is refused (the server says which subject), and the
same helper connects through TLS with a private CA and a client certificate.

Each test runs its own server: the refusals it provokes would fail the session server's check
that no component was ever refused."""

from __future__ import annotations

import asyncio
import gc
import ssl
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import nats.errors
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from herald.core import envelopes, natsconn, streams, subjects
from herald.core.envelopes import Recipient, WorkBatch
from herald.core.permissions import Component
from herald.dev.nats import NatsServer
from herald.operator.publishing import ensure_consumer

CONTROL_STREAM = f"KV_{subjects.CONTROL_BUCKET}"
KV = f"$KV.{subjects.CONTROL_BUCKET}."


@dataclass
class Session:
    """A component's connection that keeps what the server refused it."""

    client: Client
    js: JetStreamContext
    errors: list[str] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def refused(self, attempt: Awaitable[object], subject: str) -> None:
        """``attempt`` gets no answer, and the server says why: ``subject`` is not granted."""
        with pytest.raises(nats.errors.TimeoutError):
            await attempt
        # nats-py lowercases the server's message.
        needle = f'permissions violation for publish to "{subject}"'.lower()
        while not any(needle in e.lower() for e in self.errors):
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), timeout=10)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[NatsServer]:
    with NatsServer(tmp_path / "nats") as running:
        await running.access.create_streams()  # as the operator does when it starts
        yield running


async def connect(server: NatsServer, component: Component) -> Session:
    session: Session | None = None
    early: list[str] = []

    async def on_error(error: Exception) -> None:
        (session.errors if session else early).append(str(error))
        if session:
            session.changed.set()

    client = await natsconn.connect(
        server.access.settings(component),
        component=component,
        name=f"test {component}",
        error_cb=on_error,
        allow_reconnect=False,
    )
    session = Session(client, client.jetstream(timeout=1.0), early)
    return session


@pytest.fixture
async def sessions(server: NatsServer) -> AsyncIterator[dict[Component, Session]]:
    opened = {component: await connect(server, component) for component in Component}
    yield opened
    for session in opened.values():
        await session.client.close()


async def queue_work(operator: Session) -> str:
    uid = str(uuid.uuid4())
    await ensure_consumer(operator.js, uid)
    work = WorkBatch(uid=uid, recipients=[Recipient(101, None, "Ann")])
    await operator.js.publish(subjects.work_subject(uid), envelopes.encode(work))
    return uid


async def test_the_bot_cannot_write_control_records_nor_read_work_and_the_operator_can(
    sessions: dict[Component, Session],
) -> None:
    operator, sender, bot = (
        sessions[c] for c in (Component.OPERATOR, Component.SENDER, Component.BOT)
    )
    operator_kv = await streams.expect_control_bucket(operator.js)
    await operator_kv.put(subjects.control_key("x"), b"record")
    uid = await queue_work(operator)

    bot_kv = await streams.expect_control_bucket(bot.js)
    await bot.refused(bot_kv.put(subjects.control_key("x"), b"forged"), f"{KV}broadcast.x")
    await bot.refused(bot_kv.put("bot.ns.shop", b"forged"), f"{KV}bot.ns.shop")
    await bot.refused(
        bot.js.pull_subscribe(subjects.WORK_SUBJECTS, durable="spy", stream=subjects.WORK_STREAM),
        f"$JS.API.CONSUMER.INFO.{subjects.WORK_STREAM}.spy",
    )
    spying = await bot.js.pull_subscribe_bind(
        durable=subjects.work_consumer(uid), stream=subjects.WORK_STREAM
    )
    await bot.refused(
        spying.fetch(1, timeout=1.0),
        f"$JS.API.CONSUMER.MSG.NEXT.{subjects.WORK_STREAM}.{subjects.work_consumer(uid)}",
    )

    # The sender, whose work it is, pulls it.
    pulling = await sender.js.pull_subscribe_bind(
        durable=subjects.work_consumer(uid), stream=subjects.WORK_STREAM
    )
    (message,) = await pulling.fetch(1, timeout=5.0)
    await message.ack()
    assert envelopes.decode(WorkBatch, message.data).uid == uid
    assert (await operator_kv.get(subjects.control_key("x"))).value == b"record"


async def test_the_bot_watches_bot_records_and_nothing_else_of_the_bucket(
    sessions: dict[Component, Session],
) -> None:
    operator, bot = sessions[Component.OPERATOR], sessions[Component.BOT]
    operator_kv = await streams.expect_control_bucket(operator.js)
    await operator_kv.put("bot.shop.shop-bot", b"bot record")
    await operator_kv.put(subjects.control_key("u1"), b"control record with a token")

    # A consumer created by name carries its filter in the request's subject, which the
    # bot's grant pins to bot.>.
    seen: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()

    async def keep(msg: Msg) -> None:
        await seen.put((msg.subject, msg.data))

    def watch(keys: str) -> ConsumerConfig:
        return ConsumerConfig(
            name=f"bot-{uuid.uuid4().hex[:8]}",
            deliver_policy=DeliverPolicy.LAST_PER_SUBJECT,
            ack_policy=AckPolicy.NONE,
            filter_subject=f"{KV}{keys}",
        )

    config = watch("bot.>")
    await bot.js.subscribe(f"{KV}bot.>", stream=CONTROL_STREAM, config=config, cb=keep)
    assert await asyncio.wait_for(seen.get(), timeout=10) == (
        f"{KV}bot.shop.shop-bot",
        b"bot record",
    )

    spying = watch("broadcast.>")
    await bot.refused(
        bot.js.subscribe(f"{KV}broadcast.>", stream=CONTROL_STREAM, config=spying, cb=keep),
        f"$JS.API.CONSUMER.CREATE.{CONTROL_STREAM}.{spying.name}.{KV}broadcast.>",
    )
    bot_kv = await streams.expect_control_bucket(bot.js)
    # nats-py's own watch creates its consumer without a name: not granted to the bot.
    await bot.refused(bot_kv.watch("bot.>"), f"$JS.API.CONSUMER.CREATE.{CONTROL_STREAM}")
    # Nor single reads, which on this bucket would read any key.
    await bot.refused(bot_kv.get("bot.shop.shop-bot"), f"$JS.API.STREAM.MSG.GET.{CONTROL_STREAM}")


async def test_a_component_reads_replies_below_its_own_inbox_only(
    sessions: dict[Component, Session],
) -> None:
    bot = sessions[Component.BOT]
    for others in ("_INBOX.>", "_INBOX_herald_sender.>", ">"):
        await bot.client.subscribe(others)
        await bot.client.flush()
        while not any(f'subscription to "{others.lower()}"' in e.lower() for e in bot.errors):
            bot.changed.clear()
            await asyncio.wait_for(bot.changed.wait(), timeout=10)


# nats-py leaves the socket of a connection it gave up on to the garbage collector, which
# warns. Each test below collects it itself, where it is expected, pass or fail, rather than
# whichever test happens to run during the next collection.
_LEAKS_REFUSED_SOCKETS = pytest.mark.filterwarnings(
    "ignore::pytest.PytestUnraisableExceptionWarning"
)


@pytest.fixture
def collect_refused_sockets() -> Iterator[None]:
    yield
    gc.collect()


@_LEAKS_REFUSED_SOCKETS
@pytest.mark.usefixtures("collect_refused_sockets")
async def test_a_component_with_another_ones_password_is_turned_away(
    server: NatsServer,
) -> None:
    settings = server.access.settings(Component.SENDER).model_copy(
        update={"password": server.access.settings(Component.BOT).password}
    )
    with pytest.raises(nats.errors.Error):
        await natsconn.connect(
            settings, component=Component.SENDER, name="impostor", allow_reconnect=False
        )


async def _expect_work_stream(server: NatsServer, component: Component, **changes: object) -> None:
    settings = server.access.settings(component).model_copy(update=changes)
    client = await natsconn.connect(
        settings, component=component, name="tls", allow_reconnect=False, connect_timeout=5
    )
    try:
        await streams.expect_work_stream(client.jetstream(timeout=5))
    finally:
        await client.close()


@_LEAKS_REFUSED_SOCKETS
@pytest.mark.usefixtures("collect_refused_sockets")
async def test_components_connect_through_tls_with_the_ca_and_a_client_certificate(
    tmp_path: Path,
) -> None:
    with NatsServer(tmp_path / "nats", tls=True) as server:
        assert server.access.address.startswith("tls://")
        await server.access.create_streams()
        await _expect_work_stream(server, Component.SENDER)
        await _expect_work_stream(server, Component.OPERATOR)

        # The server verifies clients: no client certificate, no connection. The client sees
        # the server's alert or the connection cut (reset, or a broken pipe when the client
        # was still writing), whichever its TLS layer meets first.
        with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
            await _expect_work_stream(
                server, Component.SENDER, tls_cert_file=None, tls_key_file=None
            )
        assert "client didn't provide a certificate" in server.log_path.read_text()
        # And the client verifies the server: the system's CAs do not know the private one.
        with pytest.raises(ssl.SSLCertVerificationError):
            await _expect_work_stream(server, Component.SENDER, tls_ca_file=None)
