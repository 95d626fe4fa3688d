"""Typed configuration of every component, read from ``HERALD_*`` environment variables.

Each group is its own settings class with its own prefix, so the variable names stay flat
(``HERALD_NATS_URL``, ``HERALD_DATABASE_URL``, ``HERALD_TELEGRAM_API_URL``) while a component
composes only the groups it needs. Secrets are ``SecretStr``: their ``repr`` and ``str`` are
masked, so logging a settings object never leaks a token or a DSN password.
"""

from __future__ import annotations

import enum

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DatabaseSettings", "LogFormat", "LogSettings", "NatsSettings", "TelegramSettings"]


class NatsSettings(BaseSettings):
    """Where the JetStream server is."""

    model_config = SettingsConfigDict(env_prefix="HERALD_NATS_", frozen=True)

    url: str = Field(
        default="nats://127.0.0.1:4222",
        description="NATS server URL; the default matches a local nats-server -js.",
    )
    replicas: int = Field(
        default=1,
        ge=1,
        le=5,
        description=(
            "Replicas of the streams and the control bucket the operator creates: 3 on a "
            "NATS cluster, so a broadcast survives the loss of a node; 1 for a single server."
        ),
    )


class DatabaseSettings(BaseSettings):
    """Where the subscriber table and the delivery ledger live."""

    model_config = SettingsConfigDict(env_prefix="HERALD_DATABASE_", frozen=True)

    url: SecretStr = Field(
        default=SecretStr("postgresql://herald@127.0.0.1:5432/herald"),
        description="PostgreSQL DSN. Secret because it may carry a password.",
    )
    migrate: bool = Field(
        default=True,
        description=(
            "Whether the operator brings the schema up to date when it starts (versioned SQL "
            "under an advisory lock, so it is safe against a concurrent `herald db migrate`). "
            "false: a DBA runs `herald db migrate` and the operator only checks."
        ),
    )
    min_connections: int = Field(
        default=1, ge=0, description="Pool floor; one keeps idle components cheap."
    )
    max_connections: int = Field(
        default=10,
        ge=1,
        description="Pool ceiling; ten covers a sender's in-flight batch without "
        "exhausting Postgres' default max_connections=100 across replicas.",
    )


class TelegramSettings(BaseSettings):
    """Which Bot API server to talk to."""

    model_config = SettingsConfigDict(env_prefix="HERALD_TELEGRAM_", frozen=True)

    api_url: str = Field(
        default="https://api.telegram.org",
        description="Bot API base URL. Tests and the demo point it at the emulator.",
    )


class LogFormat(enum.StrEnum):
    TEXT = "text"
    JSON = "json"


class LogSettings(BaseSettings):
    """How every component writes its logs."""

    model_config = SettingsConfigDict(env_prefix="HERALD_LOG_", frozen=True)

    format: LogFormat = Field(
        default=LogFormat.TEXT,
        description=(
            "text: one readable line per record, for a terminal. json: one JSON object per "
            "line, for a log pipeline; the chart sets it."
        ),
    )
    level: str = Field(
        default="INFO",
        pattern=r"^(?i:debug|info|warning|error|critical)$",
        description=(
            "Least level written: DEBUG, INFO, WARNING, ERROR or CRITICAL. INFO tells what "
            "each component did (a broadcast prepared, a lease held) without per-message lines."
        ),
    )
