"""The sender's configuration, from ``HERALD_SENDER_*`` plus the shared NATS, database and
Telegram groups of :mod:`herald.core.settings`."""

from __future__ import annotations

import os
import socket

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from herald.core.broadcasts import FREE_MESSAGES_PER_SECOND, PAID_MESSAGES_PER_SECOND
from herald.core.settings import (
    DatabaseSettings,
    NatsSettings,
    TelegramSettings,
    TokenKeySettings,
)

__all__ = ["Config", "SenderSettings", "default_sender_id"]


def default_sender_id() -> str:
    """Host name and pid: unique per live process, readable in ``deliveries.claimed_by``."""
    return f"{socket.gethostname()}-{os.getpid()}"


class SenderSettings(BaseSettings):
    """How one sender process behaves."""

    model_config = SettingsConfigDict(env_prefix="HERALD_SENDER_", frozen=True)

    id: str = Field(
        default_factory=default_sender_id,
        min_length=1,
        description="Who claims ledger rows and holds bot leases. A restarted process gets a "
        "new id, so its predecessor's claims are recognised as abandoned, never as its own.",
    )
    max_in_flight: int = Field(
        default=256,
        ge=1,
        description="Most rows a crash of the process can leave uncertain: its Bot API "
        "requests open, plus outcomes not yet written to the ledger. Pacing keeps far fewer "
        f"open at the free rate ({FREE_MESSAGES_PER_SECOND} msg/s at Telegram's ~80 ms round "
        f"trip is ~3); paid broadcasts at {PAID_MESSAGES_PER_SECOND} msg/s keep ~100 open and "
        "~30 unwritten, and slow answers need headroom, hence 256.",
    )
    claim_ttl_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Age after which a row claimed by another sender counts as abandoned. "
        "Longer than request_timeout_seconds, so a live sender's slow request is never taken "
        "for a dead sender's.",
    )
    lease_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How long a bot lease holds without renewal (renewed every fifth of it). "
        "Five seconds lets a replica miss a few renewals without losing the bot, and another "
        "replica take over a killed holder's bots within seconds.",
    )
    request_timeout_seconds: float = Field(
        default=20.0,
        gt=0,
        description="Longest wait for one Bot API answer. Telegram answers in well under a "
        "second; twenty covers a media URL Telegram must download first.",
    )
    shutdown_seconds: float = Field(
        default=25.0,
        gt=0,
        description="Time to finish in-flight sends after SIGTERM. Below Kubernetes' default "
        "terminationGracePeriodSeconds of 30, so the process exits before it is killed.",
    )
    health_port: int = Field(
        default=8080,
        ge=0,
        le=65535,
        description="Port of /livez (fails once a vital loop has failed) and /readyz (fails "
        "while NATS or Postgres does not answer); 0 turns it off (tests).",
    )
    metrics_port: int = Field(
        default=9102,
        ge=0,
        le=65535,
        description="Port of the Prometheus endpoint; 0 turns it off (tests running many "
        "senders on one host). 9102 is the operator's 9101 plus one.",
    )
    flush_seconds: float = Field(
        default=0.02,
        gt=0,
        description="Longest a send's outcome waits before it is written to the ledger. "
        "Batching writes every 20 ms costs one round trip per ~20 sends at 1000 msg/s.",
    )

    transactional_window_seconds: float = Field(
        default=300.0,
        gt=0,
        description="How long after herald-api last took a transactional message for a bot "
        "the sender keeps holding the bot (its lease, its pull of messages-<bot id>), so the "
        "next message does not wait for a lease. The operator keeps a replica running as "
        "long (HERALD_OPERATOR_TRANSACTIONAL_WINDOW_SECONDS); five minutes covers the gaps "
        "of an application that sends now and then, and costs one idle pull a second.",
    )

    free_limit: float = Field(
        default=float(FREE_MESSAGES_PER_SECOND),
        gt=0,
        description="A bot's messages per second without paid broadcasts: Telegram's limit. "
        "Raise it only against a server without limits (a benchmark on the emulator).",
    )
    paid_limit: float = Field(
        default=float(PAID_MESSAGES_PER_SECOND),
        gt=0,
        description="A bot's messages per second when every broadcast with work is paid "
        "(allow_paid_broadcast): Telegram's limit for paid broadcasts.",
    )

    @model_validator(mode="after")
    def _claims_outlive_requests(self) -> SenderSettings:
        if self.claim_ttl_seconds <= self.request_timeout_seconds:
            raise ValueError(
                "claim_ttl_seconds must exceed request_timeout_seconds, or a slow request "
                "would be taken for a dead sender"
            )
        return self


class Config(BaseModel):
    """Everything a sender process reads from its environment, grouped."""

    model_config = ConfigDict(frozen=True)

    sender: SenderSettings = Field(default_factory=SenderSettings)
    nats: NatsSettings = Field(default_factory=NatsSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    tokens: TokenKeySettings = Field(default_factory=TokenKeySettings)
