"""What the emulator enforces and which faults it injects; one model, patched over HTTP."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["EmulatorConfig", "Escalation", "Faults", "Limits", "Storm"]


class _Model(BaseModel):
    # Forbidding unknown keys turns a typo in a test's config patch into a 400, not a no-op.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Escalation(_Model):
    """Longer flood waits for a bot that keeps hitting its limit, as Telegram gives them: each
    429 within ``memory_seconds`` of the previous one (a send inside a running flood wait
    included) doubles the wait, up to ``max_retry_after``; a send inside a running wait also
    extends it."""

    factor: float = Field(default=2.0, ge=1.0, description="Growth of the wait per 429.")
    max_retry_after: int = Field(default=60, ge=1, description="The longest wait given.")
    memory_seconds: float = Field(
        default=60.0, gt=0, description="A 429 further apart than this starts again at 1 s."
    )


class Limits(_Model):
    """Telegram's flood limits, enforced per bot token over a sliding one-second window."""

    rate: int = Field(default=30, ge=0, description="Sends per second per token; 0 = no limit.")
    paid_rate: int = Field(
        default=1000,
        ge=0,
        description="Sends per second per token for requests with allow_paid_broadcast=true; "
        "0 = no limit.",
    )
    per_chat_rate: int = Field(
        default=1, ge=0, description="Sends per second per (token, chat); 0 = no limit."
    )
    escalation: Escalation | None = Field(
        default=None,
        description="Escalating flood waits for a token over its global limit; None: every "
        "429 says how long until the window has room again.",
    )


class Storm(_Model):
    """A flood-wait storm: every send answers 429 for a while, as Telegram does after abuse."""

    retry_after: int = Field(ge=1, description="The retry_after every send is answered with.")
    seconds: float = Field(gt=0, description="How long the storm lasts from when it is set.")


class Faults(_Model):
    """Failures injected into sending methods, drawn from one seedable random generator."""

    error_ratio: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Share of sends answered 500/502 before acceptance (nothing delivered).",
    )
    bad_gateway_ratio: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Share of sends answered by a proxy's HTML 502 page, not JSON, before "
        "acceptance (nothing delivered).",
    )
    drop_ratio: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Share of sends delivered and recorded whose answer is never sent "
        "(the connection is closed): the client cannot know the message went out.",
    )
    latency_ms: float = Field(default=0.0, ge=0.0, description="Added to every Bot API request.")
    jitter_ms: float = Field(
        default=0.0, ge=0.0, description="Uniform random extra latency, 0..jitter_ms."
    )
    storm: Storm | None = Field(
        default=None, description="Starts a 429 storm when set; it ends by itself."
    )


class EmulatorConfig(_Model):
    limits: Limits = Limits()
    faults: Faults = Faults()
    blocked: frozenset[int] = Field(
        default=frozenset(), description='Chats answering 403 "bot was blocked by the user".'
    )
    blocked_by: dict[str, frozenset[int]] = Field(
        default_factory=dict,
        description='Per bot token, chats that blocked that bot only (403 "bot was blocked by '
        'the user" to it, answered normally for other bots).',
    )
    deactivated: frozenset[int] = Field(
        default=frozenset(), description='Chats answering 403 "user is deactivated".'
    )
    not_found: frozenset[int] = Field(
        default=frozenset(), description='Chats answering 400 "chat not found".'
    )
    posts: dict[int, frozenset[int]] = Field(
        default_factory=dict,
        description="Messages that exist without the emulator having seen them (a channel's "
        "posts), chat id -> message ids. copyMessage copies these, the messages the emulator "
        'sent and those of injected updates; any other source is answered 400 "message to '
        'copy not found", and a source chat in not_found 400 "chat not found", as '
        "Telegram answers.",
    )
    bots: dict[str, str] | None = Field(
        default=None,
        description="The bots that exist, token -> username: any other token is answered "
        "401 Unauthorized, as Telegram answers a forged or revoked one. None: every "
        "well-formed token is a bot (its id the token's prefix).",
    )
    seed: int | None = Field(default=None, description="Seeds fault and latency draws.")

    def patched(self, patch: Mapping[str, Any]) -> EmulatorConfig:
        """This config with `patch` merged in; nested models merge key by key, so
        ``{"limits": {"rate": 5}}`` keeps the other limits."""
        return EmulatorConfig.model_validate(_merge(self.model_dump(), patch))


def _merge(base: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in patch.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged
