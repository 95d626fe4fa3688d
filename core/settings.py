"""Typed configuration of every component, read from ``HERALD_*`` environment variables.

Each group is its own settings class with its own prefix, so the variable names stay flat
(``HERALD_NATS_URL``, ``HERALD_DATABASE_URL``, ``HERALD_TELEGRAM_API_URL``) while a component
composes only the groups it needs. Secrets are ``SecretStr``: their ``repr`` and ``str`` are
masked, so logging a settings object never leaks a token or a DSN password.
"""

from __future__ import annotations

import enum
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
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
    """Where the JetStream server is and how this component proves who it is.

    Each component has its own NATS user with only the subjects it needs (docs/nats.md), so
    it authenticates with exactly one of: a user and password, a token, an nkey seed file or a
    .creds file (a user JWT and its seed, for decentralised auth). TLS is on when the URL says
    ``tls://`` or the server requires it; the ``tls_*`` files add a private CA and a client
    certificate for mutual TLS.
    """

    model_config = SettingsConfigDict(env_prefix="HERALD_NATS_", frozen=True)

    url: str = Field(
        default="nats://127.0.0.1:4222",
        description=(
            "NATS server URL, or a comma-separated list of the URLs of a cluster's servers "
            "(the client picks one and fails over to the others); the default matches a local "
            "nats-server -js."
        ),
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
    user: str | None = Field(
        default=None,
        description="NATS user name; needs HERALD_NATS_PASSWORD. One user per component.",
    )
    password: SecretStr | None = Field(default=None, description="Password of HERALD_NATS_USER.")
    token: SecretStr | None = Field(
        default=None,
        description="Token authentication, instead of a user: one token gives one identity.",
    )
    nkey_seed_file: Path | None = Field(
        default=None,
        description="File holding this component's nkey seed (SU...), for nkey authentication.",
    )
    creds_file: Path | None = Field(
        default=None,
        description=(
            "A .creds file (user JWT and nkey seed, as `nsc` writes it), for accounts managed "
            "with JWTs."
        ),
    )
    tls_ca_file: Path | None = Field(
        default=None,
        description=(
            "PEM bundle of the CA that signed the server's certificate; default: the system's "
            "trust store."
        ),
    )
    tls_cert_file: Path | None = Field(
        default=None,
        description="PEM client certificate, for servers that verify clients (mutual TLS).",
    )
    tls_key_file: Path | None = Field(
        default=None, description="PEM private key of HERALD_NATS_TLS_CERT_FILE."
    )
    tls_server_name: str | None = Field(
        default=None,
        description=(
            "Name to verify the server's certificate against, when it differs from the URL's "
            "host (a server reached by IP address or through another DNS name)."
        ),
    )

    @field_validator("url")
    @classmethod
    def _servers_listed(cls, url: str) -> str:
        if not all(part.strip() for part in url.split(",")):
            raise ValueError(
                "HERALD_NATS_URL is one URL or a comma-separated list of URLs, with no empty "
                f"entry: {url!r}"
            )
        return url

    @model_validator(mode="after")
    def _one_identity(self) -> NatsSettings:
        if (self.user is None) != (self.password is None):
            given, missing = ("USER", "PASSWORD") if self.password is None else ("PASSWORD", "USER")
            raise ValueError(f"HERALD_NATS_{given} is set without HERALD_NATS_{missing}")
        identities = [
            name
            for name, value in (
                ("HERALD_NATS_USER", self.user),
                ("HERALD_NATS_TOKEN", self.token),
                ("HERALD_NATS_NKEY_SEED_FILE", self.nkey_seed_file),
                ("HERALD_NATS_CREDS_FILE", self.creds_file),
            )
            if value is not None
        ]
        if len(identities) > 1:
            raise ValueError(
                f"{' and '.join(identities)} are set together: a component authenticates one "
                "way only"
            )
        if identities and any(_carries_credentials(server) for server in self.servers):
            raise ValueError(
                f"HERALD_NATS_URL carries credentials and {identities[0]} is set too: keep the "
                "credentials in one place (the variables, not the URL)"
            )
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            given, missing = (
                ("CERT_FILE", "KEY_FILE")
                if self.tls_key_file is None
                else ("KEY_FILE", "CERT_FILE")
            )
            raise ValueError(f"HERALD_NATS_TLS_{given} is set without HERALD_NATS_TLS_{missing}")
        return self

    @property
    def servers(self) -> list[str]:
        """The URLs of HERALD_NATS_URL, in order."""
        return [part.strip() for part in self.url.split(",")]


def _carries_credentials(url: str) -> bool:
    parts = urlsplit(url)
    return parts.username is not None or parts.password is not None


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
