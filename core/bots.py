"""The Bot custom resource, ``herald.dev/v1alpha1``: a Telegram bot as a first-class identity.

A Bot names the Secret that holds its token, its limits, its admins and how it takes updates;
its status says who Telegram says it is (getMe's id and username), how many subscribers it has
and whether it is Ready. Broadcasts name a Bot of their namespace in ``spec.botRef``. Like the
Broadcast, the models here are the one definition: :mod:`herald.core.crds` turns them into
the CRD, so their descriptions are what ``kubectl explain bot.spec`` prints.
"""

from __future__ import annotations

import enum
from typing import ClassVar, Final, Literal

from pydantic import Field

from herald.core.broadcasts import FREE_MESSAGES_PER_SECOND, PAID_MESSAGES_PER_SECOND, ObjectMeta
from herald.core.contracts import (
    DATA_KEY_PATTERN,
    DNS_SUBDOMAIN_PATTERN,
    LANGUAGE_CODE_PATTERN,
    CelRule,
    Contract,
    LanguageCode,
    Timestamp,
    WireModel,
    matches,
)
from herald.core.statuses import Condition, Counter

__all__ = [
    "BOT_KIND",
    "BOT_PLURAL",
    "BOT_SINGULAR",
    "CALLBACK_SECRET_MIN_BYTES",
    "Bot",
    "BotCondition",
    "BotLimits",
    "BotReason",
    "BotSpec",
    "BotStatus",
    "Callbacks",
    "PaidLimits",
    "SecretKeyRef",
    "SubscriberCounts",
    "Updates",
    "UpdatesMode",
    "Webhook",
]

BOT_KIND: Final = "Bot"
BOT_PLURAL = "bots"
BOT_SINGULAR = "bot"
MAX_ADMINS = 64
# An HMAC-SHA256 key as long as its output: shorter keys are easier to guess than the MAC.
CALLBACK_SECRET_MIN_BYTES = 32


class SecretKeyRef(Contract):
    """A key of a Secret in the Bot's namespace."""

    name: str = Field(
        min_length=1,
        max_length=253,
        pattern=DNS_SUBDOMAIN_PATTERN,
        description="Name of the Secret, in the Bot's namespace.",
    )
    key: str = Field(
        default="token",
        min_length=1,
        max_length=253,
        pattern=DATA_KEY_PATTERN,
        description="Key in the Secret's data. Defaults to token.",
    )


class PaidLimits(Contract):
    """Paid broadcasting (allow_paid_broadcast), paid in Telegram Stars from the bot's balance."""

    enabled: bool = Field(
        default=False,
        description=(
            "Whether this bot's Broadcasts may use paid broadcasting (rate.allowPaidBroadcast). "
            "Defaults to false: a Broadcast asking for it is Stalled with PaidBroadcastDisabled."
        ),
    )
    messages_per_second: int = Field(
        default=PAID_MESSAGES_PER_SECOND,
        ge=1,
        le=PAID_MESSAGES_PER_SECOND,
        description=(
            f"The bot's ceiling with paid broadcasting, over all its Broadcasts and senders; "
            f"up to Telegram's {PAID_MESSAGES_PER_SECOND}."
        ),
    )
    stars_per_day: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Most Telegram Stars the bot's Broadcasts may spend on paid broadcasting per UTC "
            "day, all together. Absent: no daily limit beyond each Broadcast's starsBudget."
        ),
    )


class BotLimits(Contract):
    """How fast the bot may send, shared by every Broadcast and transactional message of it."""

    messages_per_second: int = Field(
        default=FREE_MESSAGES_PER_SECOND,
        ge=1,
        le=FREE_MESSAGES_PER_SECOND,
        description=(
            f"The bot's messages per second without paid broadcasting, over all its Broadcasts "
            f"and senders. Defaults to and at most Telegram's {FREE_MESSAGES_PER_SECOND}."
        ),
    )
    paid: PaidLimits = Field(
        default_factory=PaidLimits,
        json_schema_extra={"default": {}},
        description="Paid broadcasting: off unless enabled.",
    )


class UpdatesMode(enum.StrEnum):
    POLLING = "polling"
    WEBHOOK = "webhook"
    NONE = "none"


class Webhook(Contract):
    """Where Telegram posts the bot's updates, and the secret it sends with each."""

    url: str = Field(
        min_length=9,
        max_length=2048,
        pattern=r"^https://",
        description="The HTTPS URL Telegram posts updates to (setWebhook url).",
    )
    secret_token_ref: SecretKeyRef = Field(
        description=(
            "The Secret key holding the webhook's secret token (1 to 256 of A-Z, a-z, 0-9, _ "
            "and -); updates without it in X-Telegram-Bot-Api-Secret-Token are refused. "
            "Required: without it anyone who reaches the URL could forge an admin's update."
        ),
    )


class Callbacks(Contract):
    """How herald-api signs the outcome callbacks of the bot's transactional messages."""

    secret_ref: SecretKeyRef = Field(
        description=(
            f"The Secret key holding the secret (at least {CALLBACK_SECRET_MIN_BYTES} bytes) that "
            "signs each callback: "
            "header Herald-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.<body>'>. "
            "A message with a callbackUrl is refused while the Bot has none."
        ),
    )


class Updates(Contract):
    """How the admin bot takes this bot's updates."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule="self.mode != 'webhook' || has(self.webhook)",
            message="mode webhook needs webhook.url and webhook.secretTokenRef",
            field_path=".webhook",
            holds=lambda u: u.mode is not UpdatesMode.WEBHOOK or u.webhook is not None,
        ),
    )

    mode: UpdatesMode = Field(
        default=UpdatesMode.POLLING,
        description=(
            "polling (default): the bot process long-polls getUpdates. webhook: Telegram posts "
            "to webhook.url. none: nobody reads updates (a send-only bot: no subscriber is "
            "recorded, no admin command is answered)."
        ),
    )
    webhook: Webhook | None = Field(default=None, description="Required with mode webhook.")


class BotSpec(Contract):
    """Which Telegram bot, how fast it may send, who commands it and how it takes updates."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule="!has(self.defaultLanguage) || self.defaultLanguage.matches("
            f"'{LANGUAGE_CODE_PATTERN}')",
            message="defaultLanguage is a lowercase language code such as en, ru or pt-br",
            field_path=".defaultLanguage",
            holds=lambda s: (
                s.default_language is None or matches(LANGUAGE_CODE_PATTERN, s.default_language)
            ),
        ),
    )

    token_secret_ref: SecretKeyRef = Field(
        description=(
            "The Secret (in the Bot's namespace) and key holding the token from @BotFather. "
            "The operator verifies it with getMe before anything is sent with it; a new token "
            "in the Secret is picked up within seconds, without restarts."
        ),
    )
    limits: BotLimits = Field(
        default_factory=BotLimits,
        json_schema_extra={"default": {}},
        description="The bot's sending limits, shared by all its Broadcasts.",
    )
    admins: tuple[int, ...] = Field(
        default=(),
        max_length=MAX_ADMINS,
        description=(
            "Telegram user ids allowed to command this bot (list, pause, resume and create "
            "Broadcasts), in private chats only."
        ),
    )
    updates: Updates = Field(
        default_factory=Updates,
        json_schema_extra={"default": {"mode": "polling"}},
        description="How updates reach the admin bot: polling (default), webhook or none.",
    )
    default_language: LanguageCode | None = Field(
        default=None,
        description="Language of the bot's own replies to users whose language is unknown.",
    )
    callbacks: Callbacks | None = Field(
        default=None,
        description="The secret that signs transactional messages' outcome callbacks.",
    )


class BotReason(enum.StrEnum):
    """Reasons of a Bot's Ready condition."""

    # ruff: noqa: S105 - reasons, not secrets

    VERIFIED = "Verified"  # getMe answered for the token
    SECRET_NOT_FOUND = "SecretNotFound"
    KEY_NOT_FOUND = "KeyNotFound"
    TOKEN_MALFORMED = "TokenMalformed"
    TOKEN_INVALID = "TokenInvalid"  # Telegram answered 401 to getMe
    TELEGRAM_UNREACHABLE = "TelegramUnreachable"  # no answer yet: not verified either way
    WEBHOOK_SECRET_NOT_FOUND = "WebhookSecretNotFound"
    # spec.callbacks.secretRef names a Secret or key that does not exist, or a secret too
    # short to sign with: herald-api could not sign the Bot's outcome callbacks.
    CALLBACK_SECRET_NOT_FOUND = "CallbackSecretNotFound"
    CALLBACK_SECRET_TOO_SHORT = "CallbackSecretTooShort"


class BotCondition(Condition):
    """One observation of the Bot's state, shaped like metav1.Condition."""

    type: Literal["Ready"] = Field(  # type: ignore[assignment]
        description=(
            "Ready: True when getMe verified the token, so Broadcasts may send with it; "
            "False with the reason (SecretNotFound, KeyNotFound, TokenMalformed, TokenInvalid)."
        ),
    )


class SubscriberCounts(Contract):
    """The bot's subscribers, as the admin bot and imports recorded them."""

    active: Counter = Field(default=0, description="Subscribers Broadcasts may reach.")
    inactive: Counter = Field(
        default=0, description="Subscribers who blocked the bot or were deactivated."
    )


class BotStatus(Contract):
    """What the operator observed of the Bot."""

    bot_id: int | None = Field(
        default=None,
        ge=1,
        json_schema_extra={"format": "int64"},
        description="The bot's id, as getMe returned it for the token (never read from the "
        "token's text).",
    )
    username: str | None = Field(
        default=None, max_length=64, description="The bot's @username, as getMe returned it."
    )
    subscribers: SubscriberCounts | None = Field(
        default=None, description="Subscriber counts, refreshed every few seconds."
    )
    verified_at: Timestamp | None = Field(
        default=None, description="When getMe last verified the current token."
    )
    observed_generation: Counter | None = Field(
        default=None, description="metadata.generation of the spec this status reflects."
    )
    conditions: tuple[BotCondition, ...] = Field(
        default=(),
        max_length=8,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
        description="Ready. Wait for it with: kubectl wait --for=condition=Ready bot/NAME.",
    )


class Bot(WireModel):
    """A Bot as stored by the API server."""

    api_version: Literal["herald.dev/v1alpha1"] = "herald.dev/v1alpha1"
    kind: Literal["Bot"] = BOT_KIND
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: BotSpec
    status: BotStatus | None = None
