"""Configuration of the admin bot process, read from ``HERALD_BOT_*`` variables.

The process serves every Bot the operator verified whose updates come by polling or webhook
(their tokens, admins and webhooks are the Bots' own, read from the control bucket under the
token key ring). ``HERALD_BOT_TOKEN`` is the older form, deprecated: one more bot, configured
here, with ``HERALD_BOT_ADMINS`` and the ``HERALD_BOT_WEBHOOK_*`` settings.

The bot's own group is composed with the core groups it needs (NATS for the Bots and the
completion reports, Postgres for subscribers, the Bot API URL, the token keys), so every
variable keeps its one, flat name.
"""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from herald.core.sealing import KeyRing
from herald.core.settings import (
    DatabaseSettings,
    NatsSettings,
    TelegramSettings,
    TokenKeySettings,
)

__all__ = ["BotSettings", "Settings"]


class BotSettings(BaseSettings):
    """The process's limits and servers, and the older single bot: its token, its admins,
    and where its Broadcasts live."""

    model_config = SettingsConfigDict(env_prefix="HERALD_BOT_", frozen=True)

    token: SecretStr | None = Field(
        default=None,
        description=(
            "Deprecated: the token of one bot served besides the Bots of the cluster; create a "
            "Bot resource instead (its admins and webhook are then its own). Unset (the "
            "default): only Bots are served. Secret, so logging the settings never shows it."
        ),
    )
    admins: frozenset[int] = Field(
        default=frozenset(),
        description=(
            "Telegram user ids allowed to command the bot of HERALD_BOT_TOKEN, as a JSON list "
            "([1, 2]); a Bot's admins are in its spec.admins. Empty by default: nobody is an "
            "admin until someone is named, so a misconfigured bot refuses rather than obeys."
        ),
    )
    namespace: str = Field(
        default="default",
        min_length=1,
        description=(
            "Namespace the bot of HERALD_BOT_TOKEN creates Broadcasts in, and where a bare NAME "
            "is looked up (a Bot's is its own namespace). 'default' matches a kubeconfig "
            "without a namespace; the chart sets its own."
        ),
    )
    namespaces: tuple[str, ...] = Field(
        default=(),
        description=(
            "Namespaces the bot of HERALD_BOT_TOKEN lists and acts in, as a JSON list. Empty "
            "(the default): only `namespace`, because the bot's Role is namespaced and "
            "granted nowhere else."
        ),
    )
    secret_name: str = Field(
        default="herald-bot",
        min_length=1,
        description=(
            "Name of the Secret holding HERALD_BOT_TOKEN, written as botRef of the Broadcasts "
            "that bot creates, so they are sent by this same bot (a Bot's Broadcasts name the "
            "Bot). Defaults to the chart's Secret name."
        ),
    )
    webhook_url: str | None = Field(
        default=None,
        description=(
            "Public HTTPS URL Telegram posts the updates of HERALD_BOT_TOKEN to; needs "
            "webhook_secret. Unset (the default): long polling, which needs no ingress and "
            "suits one replica."
        ),
    )
    webhook_host: str = Field(
        default="0.0.0.0",  # noqa: S104 - a container listens on all its interfaces
        description=(
            "Address the webhook server binds; all interfaces, as in a container. One server "
            "takes the updates of every bot in webhook mode, each on its URL's path."
        ),
    )
    webhook_port: int = Field(
        default=8080,
        ge=1,
        le=65535,
        description="Port of the webhook server; 8080 needs no privileges.",
    )
    webhook_path: str = Field(
        default="/telegram/webhook",
        pattern=r"^/\S*$",
        description=(
            "Path the webhook server takes the updates of HERALD_BOT_TOKEN on (a Bot's is the "
            "path of its webhook.url); a fixed, unguessable-enough default."
        ),
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        description=(
            "Secret Telegram sends in X-Telegram-Bot-Api-Secret-Token with every webhook "
            "call for HERALD_BOT_TOKEN; requests without it are refused. Required with "
            "webhook_url: without it anyone who finds the URL could post an admin's command."
        ),
    )
    live_interval: float = Field(
        default=3.0,
        gt=0,
        description=(
            "Least seconds between two edits of one status message. Telegram throttles "
            "edits of a message to about one a second and a chat to about 20 a minute; 3 s "
            "keeps several live messages in one chat within that."
        ),
    )
    live_messages: int = Field(
        default=20,
        ge=0,
        description=(
            "How many status messages are kept live at once; older ones stop updating. "
            "Bounds the bot's own edit traffic and its memory."
        ),
    )
    health_port: int = Field(
        default=8081,  # beside the webhook server's 8080
        ge=0,
        le=65535,
        description="Port of /livez (fails once live status or completion reports stopped) and "
        "/readyz (fails while NATS or Postgres does not answer); 0 turns it off (tests).",
    )
    metrics_port: int = Field(
        default=9103,
        ge=0,
        le=65535,
        description=(
            "Port of the Prometheus /metrics endpoint; 0 disables it. 9103 follows the "
            "operator's 9101 and the sender's 9102."
        ),
    )
    max_concurrent_updates: int = Field(
        default=64,
        ge=1,
        description=(
            "Most updates handled at once, over every bot the process serves. The next one "
            "waits: polling asks Telegram for no more, a webhook call is answered later. 64 "
            "keeps a burst from opening more Kubernetes and Postgres calls than their pools "
            "and the API server's limits take."
        ),
    )
    dialogs: int = Field(
        default=1000,
        ge=1,
        description=(
            "Most creation dialogs (a forwarded post waiting for its audience, rate and "
            "confirmation) remembered at once; the least recently advanced is forgotten "
            "first. Only dialogs are kept: a user's other messages leave no state."
        ),
    )
    dialog_ttl: float = Field(
        default=3600.0,
        gt=0,
        description=(
            "Seconds a creation dialog is remembered after its last step; its buttons then "
            "answer that it expired. An hour outlasts a coffee break, not a week."
        ),
    )
    durable: str = Field(
        default="herald-bot",
        pattern=r"^[A-Za-z0-9_-]+$",
        description=(
            "Name of the durable JetStream consumer of completion records; one per bot "
            "deployment, so a restart picks up the reports it missed."
        ),
    )

    @field_validator("namespaces")
    @classmethod
    def _no_blank_namespaces(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not namespace for namespace in value):
            raise ValueError("namespaces must not contain empty names")
        return value

    @model_validator(mode="after")
    def _webhook_has_a_secret(self) -> Self:
        if self.webhook_url and self.webhook_secret is None:
            raise ValueError(
                "HERALD_BOT_WEBHOOK_URL needs HERALD_BOT_WEBHOOK_SECRET: without the secret "
                "anyone who finds the URL could post updates as Telegram, admins' commands "
                "included; set one (1 to 256 of A-Z, a-z, 0-9, _ and -), or unset the URL "
                "to poll"
            )
        return self

    @property
    def listed_namespaces(self) -> tuple[str, ...]:
        """Where /broadcasts looks: the configured list, else the bot's own namespace."""
        return self.namespaces or (self.namespace,)


class Settings(BaseModel):
    """Everything the bot process reads, grouped as the components share it."""

    model_config = ConfigDict(frozen=True)

    bot: BotSettings
    nats: NatsSettings = Field(default_factory=NatsSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    tokens: TokenKeySettings = Field(default_factory=TokenKeySettings)

    @classmethod
    def from_environment(cls) -> Settings:
        return cls(bot=BotSettings())

    def ring(self) -> KeyRing | None:
        """The token key ring that opens the Bots' records; None when none is configured
        (then only HERALD_BOT_TOKEN is served). A ring that is configured but cannot be
        read is an error, never a quiet fallback."""
        if self.tokens.keys is None and self.tokens.keys_file is None:
            return None
        return self.tokens.ring()
