"""One broadcast's work queue, with stand-ins for JetStream messages: which message is
acked, nak'ed or terminated as its rows settle, and the order rows come back in."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

from herald.core import subjects
from herald.core.envelopes import Recipient, WorkBatch, encode
from herald.sender.metrics import Metrics
from herald.sender.queues import WorkQueue

UID = "b-1"


@dataclass
class Message:
    """What WorkQueue uses of a nats Msg; records the answers it gets."""

    data: bytes
    sequence: int
    answers: list[str] = field(default_factory=list)

    @property
    def metadata(self) -> Any:
        return SimpleNamespace(sequence=SimpleNamespace(stream=self.sequence))

    async def ack(self) -> None:
        self.answers.append("ack")

    async def nak(self, delay: float | None = None) -> None:
        self.answers.append("nak" if delay is None else f"nak {delay:g}")

    async def term(self) -> None:
        self.answers.append("term")


class Subscription:
    def __init__(self, *messages: Message) -> None:
        self.messages = list(messages)

    async def fetch(self, *, batch: int, **_: float) -> list[Message]:
        taken, self.messages = self.messages[:batch], self.messages[batch:]
        return taken

    async def consumer_info(self) -> Any:
        return SimpleNamespace(config=SimpleNamespace(ack_wait=12.0))

    async def unsubscribe(self) -> None:
        pass


class JetStream:
    def __init__(self, *messages: Message) -> None:
        self.sub = Subscription(*messages)

    async def pull_subscribe_bind(self, *, durable: str, stream: str) -> Subscription:
        assert (durable, stream) == (subjects.work_consumer(UID), subjects.WORK_STREAM)
        return self.sub


def work(sequence: int, *chat_ids: int, uid: str = UID) -> Message:
    batch = WorkBatch(uid=uid, recipients=[Recipient(chat_id) for chat_id in chat_ids])
    return Message(encode(batch), sequence)


async def queue_of(*messages: Message) -> tuple[WorkQueue, set[asyncio.Task[Any]], Metrics]:
    acks: set[asyncio.Task[Any]] = set()
    metrics = Metrics()
    queue = WorkQueue(
        cast(Any, JetStream(*messages)), UID, acks=acks, nak_delay=7.5, metrics=metrics
    )
    await queue.bind()
    assert queue.bound
    assert queue.ack_wait == 12.0
    await queue.pull(len(messages) or 1)
    return queue, acks, metrics


async def answered(acks: set[asyncio.Task[Any]]) -> None:
    await asyncio.gather(*acks)


def chats(recipients: Any) -> list[int]:
    return [recipient.chat_id for recipient in recipients]


async def test_a_message_is_acked_once_every_row_of_it_settles() -> None:
    first, second = work(1, 10, 11), work(2, 20)
    queue, acks, _ = await queue_of(first, second)
    assert chats(queue.unclaimed) == [10, 11, 20]
    queue.settle([10])
    await answered(acks)
    assert first.answers == []
    queue.settle([11, 20])
    await answered(acks)
    assert first.answers == ["ack"]
    assert second.answers == ["ack"]


async def test_a_stopped_broadcasts_settled_messages_are_not_acked() -> None:
    message = work(1, 10)
    queue, acks, _ = await queue_of(message)
    queue.stop()
    queue.settle([10])
    await answered(acks)
    assert message.answers == []


async def test_a_message_left_with_only_another_senders_rows_is_nakd_with_a_delay() -> None:
    message = work(1, 10, 11)
    queue, acks, _ = await queue_of(message)
    queue.settle([10])
    queue.busy([11])
    await answered(acks)
    assert message.answers == ["nak 7.5"]
    # Forgotten here: a late settle of its row answers nothing more.
    queue.settle([11])
    await answered(acks)
    assert message.answers == ["nak 7.5"]


async def test_a_chat_carried_by_two_messages_is_queued_once() -> None:
    first, copy = work(1, 10, 11), work(2, 11)
    queue, acks, _ = await queue_of(first, copy)
    assert chats(queue.unclaimed) == [10, 11]
    await answered(acks)
    # Nothing else would ever settle the copy: it is acked at once.
    assert copy.answers == ["ack"]
    assert first.answers == []


async def test_a_redelivered_message_keeps_its_rows_and_answers_on_the_new_delivery() -> None:
    message, again = work(1, 10), work(1, 10)
    queue, acks, _ = await queue_of(message, again)
    assert chats(queue.unclaimed) == [10]
    queue.settle([10])
    await answered(acks)
    assert (message.answers, again.answers) == ([], ["ack"])


async def test_bad_work_is_terminated_and_counted() -> None:
    foreign, garbage = work(1, 10, uid="another"), Message(b"\xc1", 2)
    queue, _, metrics = await queue_of(foreign, garbage)
    assert not queue.unclaimed
    assert foreign.answers == garbage.answers == ["term"]
    for reason in ("foreign", "undecodable"):
        assert (
            metrics.registry.get_sample_value(
                "herald_sender_bad_work_messages_total", {"reason": reason}
            )
            == 1
        )


async def test_rows_come_back_in_order() -> None:
    queue, _, _ = await queue_of(work(1, 1, 2, 3, 4, 5))
    taken = queue.take(3)
    assert chats(taken) == [1, 2, 3]
    queue.untake(taken[2:])
    queue.ready.extend(taken[:2])
    assert (chats(queue.unclaimed), queue.queued, queue.claimed) == ([3, 4, 5], 5, 2)
    first, second = queue.ready.popleft(), queue.ready.popleft()
    queue.retry(2.0, second)
    queue.retry(1.0, first)
    assert queue.due(0.5) == 1.0
    assert queue.due(1.0) == 2.0
    assert chats(queue.ready) == [1]
    assert chats(queue.release()) == [1, 2]
    assert queue.claimed == 0
