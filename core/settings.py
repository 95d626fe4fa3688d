"""Typed configuration of every component, read from ``HERALD_*`` environment variables.

Each group is its own settings class with its own prefix, so the variable names stay flat
(``HERALD_NATS_URL``, ``HERALD_DATABASE_URL``, ``HERALD_TELEGRAM_API_URL``) while a component
composes only the groups it needs. Secrets are ``SecretStr``: their ``repr`` and ``str`` are
masked, so logging a settings object never leaks a token or a DSN password.
"""

from __future__ import annotations

import enum
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from herald.core.sealing import KeyRing, SealError

__all__ = [
    "DatabaseSettings",
    "LogFormat",
    "LogSettings",
    "NatsSettings",
    "TelegramSettings",
    "TokenKeySettings",
]


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
    legacy_bot_id: str | None = Field(
        default=None,
        pattern=r"^[1-9][0-9]{0,18}$",
        description=(
            "Only for the upgrade that keeps subscribers per bot (migration 0004): the id of "
            "the bot the subscribers recorded before it belong to, when Herald cannot tell "
            "(no Broadcast, or Broadcasts of several bots, so far). The digits before the "
            "colon of the bot's token; the same as `herald db migrate --bot-id`."
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


class TokenKeySettings(BaseSettings):
    """The key ring that seals bot tokens on NATS (operator, senders and bot alike)."""

    model_config = SettingsConfigDict(env_prefix="HERALD_TOKEN_", frozen=True)

    keys: SecretStr | None = Field(
        default=None,
        description=(
            "Token keys, `<id>:<base64 of 32 bytes>`, separated by commas; the first seals, "
            "every one opens (rotation: docs/install.md). Generate one with "
            "`herald token-key`. The chart mounts them from a Secret into keysFile instead."
        ),
    )
    keys_file: Path | None = Field(
        default=None,
        description="A file with the token keys, one per line, as the chart mounts them.",
    )

    def ring(self) -> KeyRing:
        """The key ring; SealError with what to do when none is configured."""
        if self.keys_file is not None:
            try:
                text = self.keys_file.read_text()
            except OSError as exc:
                raise SealError(
                    f"HERALD_TOKEN_KEYS_FILE={self.keys_file} cannot be read: {exc}"
                ) from exc
        elif self.keys is not None:
            text = self.keys.get_secret_value()
        else:
            raise SealError(
                "no token key: set HERALD_TOKEN_KEYS (or HERALD_TOKEN_KEYS_FILE) to the key ring "
                "that seals bot tokens on NATS, the same for operator, senders and bot "
                "(`herald token-key` prints a new key)"
            )
        return KeyRing.parse(text)


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
