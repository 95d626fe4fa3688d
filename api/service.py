"""Taking, reading and waiting for messages: what the routes of :mod:`herald.api.routes` do,
once the caller is authorised.

Taking a message (:meth:`Service.accept`): the Bot must be known (404), a callbackUrl needs
the Bot's callback secret (422), the bot's open messages must be under the bound (429), then
the row is inserted under its Idempotency-Key. The unique key decides between concurrent
POSTs of one key, wherever they run: whoever loses reads the winner's row, and answers with
it when the body is the same (by fingerprint), else 422. A message still pending is queued
again on each such answer, which the stream drops as a duplicate when it has it.
"""

from __future__ import annotations

import asyncio
import math
import uuid

import asyncpg
from fastapi import HTTPException, status

from herald.api import postgres
from herald.api.bots import KnownBots
from herald.api.errors import IDEMPOTENCY_KEY, problem
from herald.api.publishing import Publisher
from herald.api.settings import ApiSettings
from herald.api.waiting import Outcomes
from herald.core.broadcasts import FREE_MESSAGES_PER_SECOND
from herald.core.envelopes import BotRecord
from herald.core.messages import FINAL_STATES, MessageRequest, fingerprint, state_of

__all__ = ["Service", "is_final", "retry_after"]

# A waiter looks at the row this often too, in case the announcement of its outcome was lost.
_LOOK_SECONDS = 2.0
# The bound is checked against a count at most this old, plus what this process took since:
# counting on every POST costs up to the bound's index entries each time, and makes a long
# queue slow to add to exactly when it is long. Several replicas may overshoot the bound by
# what each takes in this time, a few hundred messages at most.
_COUNT_SECONDS = 1.0


def is_final(row: postgres.MessageRow) -> bool:
    return state_of(row.state) in FINAL_STATES


def retry_after(record: BotRecord, *, bound: int) -> int:
    """Seconds a client refused for a full queue waits: how long the bot takes, at its
    limit, to send a tenth of the bound; at least one."""
    rate = record.limits.messages_per_second if record.limits else FREE_MESSAGES_PER_SECOND
    return max(1, math.ceil(bound / 10 / rate))


class Service:
    def __init__(
        self,
        pool: asyncpg.Pool,
        bots: KnownBots,
        publisher: Publisher,
        outcomes: Outcomes,
        *,
        settings: ApiSettings,
    ) -> None:
        self.pool = pool
        self.bots = bots
        self.publisher = publisher
        self.outcomes = outcomes
        self.settings = settings
        self.stopping = False
        self._open: dict[str, tuple[float, int]] = {}  # bot id -> (counted at, open since)

    async def _open_of(self, bot_id: str, *, bound: int) -> int:
        now = asyncio.get_running_loop().time()
        counted = self._open.get(bot_id)
        if counted is None or now - counted[0] > _COUNT_SECONDS:
            counted = (now, await postgres.open_of(self.pool, bot_id, up_to=bound))
            self._open[bot_id] = counted
        return counted[1]

    def _took(self, bot_id: str) -> None:
        if (counted := self._open.get(bot_id)) is not None:
            self._open[bot_id] = (counted[0], counted[1] + 1)

    def stop_waiting(self) -> None:
        """The process is stopping: every ?wait= answers now with what it has."""
        self.stopping = True
        self.outcomes.wake_all()

    async def accept(
        self, namespace: str, bot: str, key: str, request: MessageRequest
    ) -> postgres.MessageRow:
        record = self.bots.get(namespace, bot)
        if record is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                f'no Bot "{bot}" in namespace "{namespace}" takes messages: there is none of '
                "that name, or the operator has not verified its token (kubectl describe bot)",
            )
        if request.callback_url is not None and record.callback_secret is None:
            raise HTTPException(
                422,
                [
                    problem(
                        ["body", "callbackUrl"],
                        f'the Bot "{bot}" has no callback secret to sign callbacks with: set '
                        "its spec.callbacks.secretRef, or leave callbackUrl out",
                        "callback_secret_missing",
                    )
                ],
            )
        print_ = fingerprint(request)
        bound = self.settings.queue_bound
        if await self._open_of(record.bot_id, bound=bound) >= bound:
            # A retry of a message already taken is answered as ever; only new ones wait.
            existing = await postgres.find_by_key(self.pool, namespace, bot, key)
            if existing is None:
                raise HTTPException(
                    status.HTTP_429_TOO_MANY_REQUESTS,
                    f'the Bot "{bot}" has {bound} messages waiting to be sent, its bound '
                    "(HERALD_API_QUEUE_BOUND): try again later",
                    headers={"Retry-After": str(retry_after(record, bound=bound))},
                )
            row = existing
        else:
            self._took(record.bot_id)
            row, _ = await postgres.insert(
                self.pool,
                postgres.NewMessage(
                    id=uuid.uuid4(),
                    namespace=namespace,
                    bot=bot,
                    bot_id=record.bot_id,
                    idempotency_key=key,
                    fingerprint=print_,
                    chat_id=request.chat_id,
                    content=request.content,
                    deadline=request.deadline,
                    callback_url=request.callback_url,
                ),
            )
        if row.fingerprint != print_:
            raise HTTPException(
                422,
                f"the {IDEMPOTENCY_KEY} {key!r} was used for another message ({row.id}) with "
                "a different body: a new message needs a new key",
            )
        await self.publisher.note_traffic(namespace=namespace, name=bot, bot_id=row.bot_id)
        if row.state == "pending":
            await self.publisher.publish(row.bot_id, row.work())
        return row

    async def read(self, namespace: str, bot: str, message_id: uuid.UUID) -> postgres.MessageRow:
        row = await postgres.find(self.pool, namespace, bot, message_id)
        if row is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                f'no message {message_id} of Bot "{bot}" in namespace "{namespace}" (messages '
                f"are kept {self.settings.idempotency_hours:g} hours)",
            )
        return row

    async def settle(self, row: postgres.MessageRow, *, wait: float) -> postgres.MessageRow:
        """The row once final, or as it is after ``wait`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        with self.outcomes.waiter(str(row.id)) as announced:
            while True:
                # Read once the waiter is there, so no announcement falls between the two.
                row = await postgres.find(self.pool, row.namespace, row.bot, row.id) or row
                left = deadline - loop.time()
                if is_final(row) or self.stopping or left <= 0:
                    return row
                try:
                    async with asyncio.timeout(min(left, _LOOK_SECONDS)):
                        await announced.wait()
                except TimeoutError:
                    pass
                announced.clear()
