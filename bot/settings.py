"""Configuration of the admin bot, read from ``HERALD_BOT_*`` variables.

The bot's own group is composed with the core groups it needs (NATS for completion reports,
Postgres for subscribers, the Bot API URL), so every variable keeps its one, flat name.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from herald.core.settings import DatabaseSettings, NatsSettings, TelegramSettings

__all__ = ["BotSettings", "Settings"]


class BotSettings(BaseSettings):
    """The bot's identity, its admins, and where its Broadcasts live."""

    model_config = SettingsConfigDict(env_prefix="HERALD_BOT_", frozen=True)

    token: SecretStr = Field(
        description=(
            "Bot token from @BotFather. No default: a bot without its token cannot do "
            "anything. Secret, so logging the settings never shows it."
        ),
    )
    admins: frozenset[int] = Field(
        default=frozenset(),
        description=(
            "Telegram user ids allowed to manage broadcasts, as a JSON list ([1, 2]); in the "
            "cluster it comes from a Secret. Empty by default: nobody is an admin until "
            "someone is named, so a misconfigured bot refuses rather than obeys."
        ),
    )
    namespace: str = Field(
        default="default",
        min_length=1,
        description=(
            "Namespace new Broadcasts are created in, and where a bare NAME is looked up. "
            "'default' matches a kubeconfig without a namespace; the chart sets its own."
        ),
    )
    namespaces: tuple[str, ...] = Field(
        default=(),
        description=(
            "Namespaces /broadcasts lists, as a JSON list. Empty (the default): only "
            "`namespace`, because the bot's Role is namespaced and granted nowhere else."
        ),
    )
    secret_name: str = Field(
        default="herald-bot",
        min_length=1,
        description=(
            "Name of the Secret holding this bot's token, written as botRef of the "
            "Broadcasts the bot creates, so they are sent by this same bot. Defaults to the "
            "chart's Secret name."
        ),
    )
    webhook_url: str | None = Field(
        default=None,
        description=(
            "Public HTTPS URL Telegram posts updates to. Unset (the default): long polling, "
            "which needs no ingress and suits one replica."
        ),
    )
    webhook_host: str = Field(
        default="0.0.0.0",  # noqa: S104 - a container listens on all its interfaces
        description="Address the webhook server binds; all interfaces, as in a container.",
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
        description="Path the webhook server answers on; a fixed, unguessable-enough default.",
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        description=(
            "Secret Telegram sends in X-Telegram-Bot-Api-Secret-Token with every webhook "
            "call; requests without it are refused. Unset: not checked (polling needs none)."
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

    @classmethod
    def from_environment(cls) -> Settings:
        # The token has no default: pydantic-settings reads it from HERALD_BOT_TOKEN.
        return cls(bot=BotSettings())
