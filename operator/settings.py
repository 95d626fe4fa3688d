"""The operator's configuration, read from ``HERALD_OPERATOR_*``, ``HERALD_SCALING_*`` and
``HERALD_SENDER_*`` variables and composed with the core's NATS and database groups.

Nothing here is ever logged whole: the database DSN may carry a password, and it stays a
``SecretStr`` inside :class:`herald.core.settings.DatabaseSettings`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from herald.core.settings import (
    DatabaseSettings,
    NatsSettings,
    TelegramSettings,
    TokenKeySettings,
)

__all__ = ["LedgerSettings", "OperatorSettings", "ScalingSettings", "SenderTarget", "Settings"]


class OperatorSettings(BaseSettings):
    """How the reconcile loop runs."""

    model_config = SettingsConfigDict(env_prefix="HERALD_OPERATOR_", frozen=True)

    namespaces: tuple[str, ...] = Field(
        default=(),
        description=(
            "Namespaces to watch (a JSON list). Empty watches the whole cluster, the usual "
            "install; a list suits a team that may only grant namespaced RBAC."
        ),
    )
    batch_size: int = Field(
        default=100,
        ge=1,
        le=1000,
        description=(
            "Recipients per JetStream work message. bench/operator_materialise.py queued "
            "1M recipients in 13.3 s (50), 12.5 s (100) and 13.3 s (500): past 100 the "
            "database, not NATS, is the bottleneck. Smaller batches keep a pause, a nak or a "
            "crashed sender's redelivery to a few seconds of work at 30 msg/s."
        ),
    )
    refresh_seconds: float = Field(
        default=5.0,
        gt=0,
        description=(
            "Least time between two status writes that only move counters; transitions are "
            "written at once. Five seconds keeps `kubectl get -w` lively without making "
            "every Broadcast an etcd write hot spot."
        ),
    )
    timer_seconds: float = Field(
        default=2.0,
        gt=0,
        description=(
            "Period of the level-based resync per Broadcast: schedules start within it, "
            "and a missed watch event is repaired within it. Cheap: one COUNT per run."
        ),
    )
    sweep_seconds: float = Field(
        default=30.0,
        gt=0,
        description=(
            "Period of the sweep that stops control records whose Broadcast is gone (left "
            "behind when deletion could not reach NATS); bounds how long senders may go on "
            "for a deleted Broadcast after NATS comes back."
        ),
    )
    nats_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description=(
            "Longest wait for one NATS request (a KV read or write, a purge, the acks of one "
            "page of work). Past it the reconcile is retried and the Broadcast says it is "
            "waiting for NATS; deletion lets the Broadcast go anyway, since a stuck finalizer "
            "is worse than a few queued batches that senders drop once the control key is gone."
        ),
    )
    database_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description=(
            "Longest wait for a Postgres connection from the pool plus one statement of a "
            "reconcile (the counts, a cursor save). Past it the reconcile is retried and the "
            "Broadcast says it is waiting for Postgres, instead of a reconcile holding its "
            "lock for ever behind an exhausted pool."
        ),
    )
    kubernetes_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description=(
            "Longest wait for one call to the API server (a Secret read, a status patch, "
            "the scale subresource); past it the call is retried on the next run."
        ),
    )
    materialise_timeout_seconds: float = Field(
        default=900.0,
        gt=0,
        description=(
            "Longest wait for the one statement that writes a whole audience into the "
            "ledger: bench/operator_materialise.py writes 5M recipients in about a minute on "
            "2 cores, so 15 minutes leaves room for ten times that on a slow disk."
        ),
    )
    verify_seconds: float = Field(
        default=300.0,
        gt=0,
        description=(
            "How long getMe's verification of a token is trusted before it is asked again. "
            "A new token in a Secret is verified at once whatever this says; a revoked one is "
            "also caught by the senders on their next send (401)."
        ),
    )
    bot_refresh_seconds: float = Field(
        default=5.0,
        gt=0,
        description=(
            "Period of each Bot's resync: its token Secret, getMe, subscriber counts and its "
            "record for the admin bot. A rotated token reaches senders within about this "
            "plus tokenCacheSeconds."
        ),
    )
    token_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        description=(
            "How long a bot token Secret read is reused by every Broadcast that names it. "
            "Without it, two hundred running Broadcasts read their Secrets a hundred times "
            "a second; with it, a created, fixed or rotated Secret is seen within this time."
        ),
    )
    preparing_connections: int = Field(
        default=4,
        ge=1,
        description=(
            "Size of the separate Postgres pool that materialising and queueing audiences "
            "use. Separate, so preparing any number of audiences at once can never take the "
            "connections that status refreshes and pauses need; four lets a few large "
            "audiences be written at once while small ones still get through."
        ),
    )
    transactional_window_seconds: float = Field(
        default=300.0,
        gt=0,
        description=(
            "How long after herald-api last took a transactional message for a bot the "
            "senders keep at least one replica running for it, so the next message never "
            "waits for a cold start; senders hold the bot as long "
            "(HERALD_SENDER_TRANSACTIONAL_WINDOW_SECONDS). With no traffic they still go to "
            "zero."
        ),
    )
    message_claim_ttl_seconds: float = Field(
        default=60.0,
        gt=0,
        description=(
            "Age after which a transactional message still claimed belongs to a sender that "
            "stopped between claim and answer, and is swept to uncertain. Well above the "
            "senders' request timeout (20 s), so a live sender's slow request is never taken "
            "for a dead sender's; the same minute as stale broadcast claims."
        ),
    )
    message_sweep_seconds: float = Field(
        default=5.0,
        gt=0,
        description=(
            "Period of the sweep of the messages table (stale claims to uncertain, pending "
            "messages past their deadline to failed): how late such a message is settled and "
            "its callback sent. Two indexed UPDATEs over the open messages only."
        ),
    )
    liveness_port: int = Field(
        default=8080,
        ge=0,
        le=65535,
        description="Port of kopf's /healthz liveness endpoint; 0 disables it (tests).",
    )
    metrics_port: int = Field(
        default=9101,
        ge=0,
        le=65535,
        description=(
            "Port of the Prometheus /metrics endpoint; 0 disables it (tests running several "
            "operators on one host). 9101, with the sender's 9102 and the bot's 9103 after "
            "it, so one host can run all three."
        ),
    )
    publish_window: int = Field(
        default=256,
        ge=1,
        description=(
            "Work messages published before awaiting their acks and saving the cursor: "
            "enough to hide NATS round trips, small enough that a crash repeats little."
        ),
    )


class LedgerSettings(BaseSettings):
    """How long the ledger keeps what it recorded (the operator runs the retention)."""

    model_config = SettingsConfigDict(env_prefix="HERALD_LEDGER_", frozen=True)

    retention_days: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Days a finished broadcast's ledger rows and clicks, and a finished "
            "transactional message, are kept; then they are removed (docs/runbook.md, "
            "data protection). Unset: kept for ever, since the ledger is the audit record and "
            "only its owner can say for how long it must be kept. A broadcast still sending "
            "loses nothing, however old its first rows are."
        ),
    )
    retention_batch: int = Field(
        default=5000,
        ge=1,
        le=100_000,
        description=(
            "Rows deleted per statement (each its own transaction): a few thousand take "
            "milliseconds, so no sender or reconcile waits long on a row lock, and a large "
            "ledger goes in a few hundred statements."
        ),
    )
    retention_interval_seconds: float = Field(
        default=3600.0,
        gt=0,
        description=(
            "Period of the retention run. Hourly: retention is counted in days, and a run "
            "that finds nothing costs one query over the broadcasts' bookkeeping rows."
        ),
    )


class ScalingSettings(BaseSettings):
    """How the sender Deployment is sized."""

    model_config = SettingsConfigDict(env_prefix="HERALD_SCALING_", frozen=True)

    manage_replicas: bool = Field(
        default=True,
        description=(
            "Whether the operator sets the sender Deployment's replicas. False when an HPA "
            "or KEDA owns them, so two controllers never fight over the same field."
        ),
    )
    min_replicas: int = Field(
        default=0,
        ge=0,
        description="Floor; zero because an idle Herald should cost nothing.",
    )
    max_replicas: int = Field(
        default=10,
        ge=0,
        description=(
            "Ceiling; one replica serves a bot at Telegram's limit, so ten covers ten bots "
            "sending at once, more than most installations have."
        ),
    )

    scale_down_seconds: float = Field(
        default=60.0,
        ge=0,
        description=(
            "Replicas are removed only once fewer were wanted for this long (0: at once), "
            "except to the floor when no bot sends. Removing a replica while bots still "
            "send hands its bot leases to another replica; Broadcasts applied together end "
            "within about a minute of each other, so a minute spares most handoffs."
        ),
    )
    warm_up_seconds: float = Field(
        default=30.0,
        ge=0,
        description=(
            "A Broadcast scheduled to start within this long counts as sending when sizing "
            "the senders, so the sender serving it is up by startAt: a sender's start (a Pod "
            "scheduled, its image pulled, its imports) takes seconds."
        ),
    )

    @model_validator(mode="after")
    def _floor_below_ceiling(self) -> Self:
        if self.min_replicas > self.max_replicas:
            raise ValueError("HERALD_SCALING_MIN_REPLICAS must not exceed MAX_REPLICAS")
        return self


class SenderTarget(BaseSettings):
    """Which Deployment runs the senders."""

    model_config = SettingsConfigDict(env_prefix="HERALD_SENDER_", frozen=True)

    namespace: str = Field(
        default="herald-system",
        description="Namespace of the sender Deployment; the chart installs it there.",
    )
    deployment: str = Field(
        default="herald-sender",
        description="Name of the sender Deployment, as the chart names it.",
    )


@dataclass(frozen=True)
class Settings:
    """Every group the operator needs, read once at start-up."""

    operator: OperatorSettings = field(default_factory=OperatorSettings)
    scaling: ScalingSettings = field(default_factory=ScalingSettings)
    ledger: LedgerSettings = field(default_factory=LedgerSettings)
    sender: SenderTarget = field(default_factory=SenderTarget)
    nats: NatsSettings = field(default_factory=NatsSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    telegram: TelegramSettings = field(default_factory=TelegramSettings)
    tokens: TokenKeySettings = field(default_factory=TokenKeySettings)
