"""What the emulator delivered and refused, and the summary tests assert on."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from herald.emulator.limits import PERIOD

__all__ = [
    "SENDING_METHODS",
    "RecordedMessage",
    "Recorder",
    "Refusal",
    "Summary",
    "max_per_period",
]

# The methods Telegram's flood limits count; the summary's delivery figures are about these.
SENDING_METHODS = frozenset(
    {
        "sendMessage",
        "copyMessage",
        "sendPhoto",
        "sendVideo",
        "sendDocument",
        "sendAnimation",
        "sendAudio",
        "sendVoice",
        "sendMediaGroup",
    }
)


class RecordedMessage(BaseModel):
    """One accepted call: a send, or an edit / callback answer / command list the bot made."""

    model_config = ConfigDict(frozen=True)

    token: str
    method: str
    chat_id: int | None
    message_id: int | None = Field(description="For a media group, its first message's id.")
    payload: dict[str, Any] = Field(description="The request's parameters, decoded.")
    monotonic: float = Field(
        description="Arrival time on the emulator's injected clock, read before parsing."
    )
    wall: AwareDatetime
    dropped: bool = Field(
        default=False, description="Delivered, but the answer was withheld (fault injection)."
    )

    @property
    def sending(self) -> bool:
        return self.method in SENDING_METHODS


class Refusal(BaseModel):
    """One call answered with an error: what a client was told, and when, so tests can check
    that a client honoured each 429's retry_after."""

    model_config = ConfigDict(frozen=True)

    token: str
    method: str
    chat_id: int | None
    status: int
    description: str
    retry_after: int | None
    monotonic: float = Field(description="Answer time on the emulator's injected clock.")
    wall: AwareDatetime


class Summary(BaseModel):
    total: int = Field(description="Accepted sends (sending methods only).")
    per_method: dict[str, int] = Field(description="Accepted calls per method, sends or not.")
    per_chat: dict[int, int] = Field(description="Accepted sends per chat.")
    duplicates: dict[str, dict[int, int]] = Field(
        description="Per token, the chats that were sent more than one message, with counts."
    )
    max_per_second: dict[str, int] = Field(
        description="Per token, the most sends accepted in any one-second window."
    )
    too_many_requests: dict[str, int] = Field(description="Per token, 429 answers given.")
    errors: dict[int, int] = Field(description="Error answers given, by HTTP status.")
    dropped: int = Field(description="Sends delivered whose answer was withheld.")


def max_per_period(times: Iterable[float]) -> int:
    """The most of `times` inside any half-open window of one PERIOD, exactly."""
    ordered = sorted(times)
    best = start = 0
    for end, time in enumerate(ordered):
        # Same float expression as the limiter's admission test, so the two always agree.
        while not ordered[start] + PERIOD > time:
            start += 1
        best = max(best, end - start + 1)
    return best


class Recorder:
    def __init__(self) -> None:
        self._messages: list[RecordedMessage] = []
        self._refusals: list[Refusal] = []
        self._errors: Counter[tuple[str, int]] = Counter()

    def record(self, message: RecordedMessage) -> None:
        self._messages.append(message)

    def refuse(self, refusal: Refusal) -> None:
        self._refusals.append(refusal)
        self._errors[refusal.token, refusal.status] += 1

    def refusals(
        self, *, token: str | None = None, status: int | None = None, method: str | None = None
    ) -> list[Refusal]:
        return [
            refusal
            for refusal in self._refusals
            if (token is None or refusal.token == token)
            and (status is None or refusal.status == status)
            and (method is None or refusal.method == method)
        ]

    def messages(
        self, *, token: str | None = None, chat_id: int | None = None, method: str | None = None
    ) -> list[RecordedMessage]:
        return [
            message
            for message in self._messages
            if (token is None or message.token == token)
            and (chat_id is None or message.chat_id == chat_id)
            and (method is None or message.method == method)
        ]

    def summary(self, *, token: str | None = None) -> Summary:
        calls = self.messages(token=token)
        sends = [message for message in calls if message.sending]
        per_chat: Counter[int] = Counter()
        per_token_chat: dict[str, Counter[int]] = defaultdict(Counter)
        times: dict[str, list[float]] = defaultdict(list)
        for message in sends:
            assert message.chat_id is not None  # every sending method names its chat
            per_chat[message.chat_id] += 1
            per_token_chat[message.token][message.chat_id] += 1
            times[message.token].append(message.monotonic)
        errors = {key: n for key, n in self._errors.items() if token is None or key[0] == token}
        status_counts: Counter[int] = Counter()
        for (_, status), n in errors.items():
            status_counts[status] += n
        return Summary(
            total=len(sends),
            per_method=dict(Counter(message.method for message in calls)),
            per_chat=dict(per_chat),
            duplicates={
                owner: {chat: n for chat, n in chats.items() if n > 1}
                for owner, chats in per_token_chat.items()
                if any(n > 1 for n in chats.values())
            },
            max_per_second={owner: max_per_period(ts) for owner, ts in times.items()},
            too_many_requests={owner: n for (owner, status), n in errors.items() if status == 429},
            errors=dict(status_counts),
            dropped=sum(message.dropped for message in sends),
        )
