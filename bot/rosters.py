"""Which bots the process serves, as data, and the pure decisions about them.

A :class:`ServedBot` is a bot as its handlers see it: which Bot it is, who commands it, where
its Broadcasts are. A :class:`Wanted` bot adds what serving it depends on: its token and how
its updates come. Bots come from the operator's records (:func:`wanted_of`, which opens the
sealed tokens) and from the older single-bot settings (:func:`legacy_wanted`).

:func:`plan` decides which of them are served (one Telegram bot, one webhook path each),
:func:`needs_restart` whether a changed record needs its bot started again, and
:func:`reporter_of` which served bot tells its admins that a Broadcast finished. No I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from pydantic import SecretStr

from herald.bot.settings import BotSettings
from herald.core import subjects
from herald.core.bots import UpdatesMode
from herald.core.envelopes import BotRecord
from herald.core.sealing import KeyRing, SealError

__all__ = [
    "LEGACY_KEY",
    "Roster",
    "ServedBot",
    "Skipped",
    "Wanted",
    "Webhook",
    "legacy_wanted",
    "needs_restart",
    "plan",
    "reporter_of",
    "reports_need_bot_ref",
    "wanted_of",
    "webhook_path",
]

# The older form's place among the records' keys (bot.<namespace>.<name>): no record has it.
LEGACY_KEY = "HERALD_BOT_TOKEN"


@dataclass(frozen=True, kw_only=True)
class ServedBot:
    """A bot as its handlers see it."""

    namespace: str  # where it creates Broadcasts, and where a bare NAME is looked up
    name: str | None  # the Bot resource; None for the older form (HERALD_BOT_TOKEN)
    bot_ref: str  # spec.botRef.name of the Broadcasts it creates
    bot_id: int
    admins: frozenset[int]
    namespaces: tuple[str, ...]  # where it lists and acts on Broadcasts
    username: str | None = None
    default_language: str | None = None

    @property
    def key(self) -> str:
        if self.name is None:
            return LEGACY_KEY
        return subjects.bot_record_key(self.namespace, self.name)

    @property
    def label(self) -> str:
        """How logs name it: the Bot, or the variable the older form comes from."""
        return LEGACY_KEY if self.name is None else f"{self.namespace}/{self.name}"

    @property
    def own_broadcasts_only(self) -> bool:
        """A Bot acts only on the Broadcasts that name it; the older form's bot on every
        Broadcast of its namespaces, as it always did."""
        return self.name is not None


@dataclass(frozen=True, kw_only=True)
class Webhook:
    url: str
    path: str  # where the webhook server takes this bot's updates
    secret: SecretStr


@dataclass(frozen=True, kw_only=True)
class Wanted:
    """A bot to serve, with everything its serving depends on."""

    served: ServedBot
    token: SecretStr = field(repr=False)
    webhook: Webhook | None = None  # None: long polling

    @property
    def mode(self) -> UpdatesMode:
        return UpdatesMode.POLLING if self.webhook is None else UpdatesMode.WEBHOOK


@dataclass(frozen=True, kw_only=True)
class Skipped:
    """A record this process does not serve, and why; ``problem`` when someone must act."""

    key: str
    reason: str
    problem: bool = True


def webhook_path(url: str) -> str:
    """The path of a webhook URL, which the webhook server routes on: an ingress in front
    passes it on as it is."""
    return urlsplit(url).path or "/"


def wanted_of(record: BotRecord, ring: KeyRing) -> Wanted | Skipped:
    """The bot a record asks to serve, its token and webhook secret opened with ``ring``."""
    if record.updates is UpdatesMode.NONE:
        return Skipped(key=record.key, reason="its updates mode is none", problem=False)
    try:
        token = record.open_token(ring)
    except SealError as exc:
        return Skipped(key=record.key, reason=f"its token does not open: {exc}")
    webhook = None
    if record.updates is UpdatesMode.WEBHOOK:
        try:
            secret = record.open_webhook_secret(ring)
        except SealError as exc:
            return Skipped(key=record.key, reason=f"its webhook secret does not open: {exc}")
        if not record.webhook_url or not secret:
            return Skipped(
                key=record.key,
                reason=(
                    "webhook mode needs webhook.url and a secret token: without the secret "
                    "anyone who finds the URL could post updates as Telegram"
                ),
            )
        webhook = Webhook(
            url=record.webhook_url, path=webhook_path(record.webhook_url), secret=SecretStr(secret)
        )
    served = ServedBot(
        namespace=record.namespace,
        name=record.name,
        bot_ref=record.name,
        bot_id=int(record.bot_id),
        admins=frozenset(record.admins),
        namespaces=(record.namespace,),
        username=record.username or None,
        default_language=record.default_language,
    )
    return Wanted(served=served, token=SecretStr(token), webhook=webhook)


def legacy_wanted(settings: BotSettings) -> Wanted | None:
    """The bot of HERALD_BOT_TOKEN, the older form; None when it is not set."""
    if settings.token is None:
        return None
    token = settings.token.get_secret_value()
    try:
        bot_id = int(subjects.bot_id_of(token))
    except ValueError as exc:
        raise ValueError(f"HERALD_BOT_TOKEN is not a bot token: {exc}") from None
    webhook = None
    if settings.webhook_url:
        # The settings refuse a webhook URL without its secret.
        assert settings.webhook_secret is not None
        webhook = Webhook(
            url=settings.webhook_url, path=settings.webhook_path, secret=settings.webhook_secret
        )
    served = ServedBot(
        namespace=settings.namespace,
        name=None,
        bot_ref=settings.secret_name,
        bot_id=bot_id,
        admins=settings.admins,
        namespaces=settings.listed_namespaces,
    )
    return Wanted(served=served, token=settings.token, webhook=webhook)


@dataclass(frozen=True)
class Roster:
    """The bots to serve by key, and the ones left out with the reason."""

    serve: Mapping[str, Wanted]
    conflicts: Mapping[str, str]


def plan(wanted: Iterable[Wanted]) -> Roster:
    """Serve every bot, but one Telegram bot and one webhook path only once.

    Two pollers of one token take each other's updates (Telegram answers the second 409),
    and one path cannot route to two bots. The Bots' records come first, in key order, then
    the older form: a Bot made for the token of HERALD_BOT_TOKEN takes over from it.
    """
    ordered = sorted(wanted, key=lambda w: (w.served.name is None, w.served.key))
    serve: dict[str, Wanted] = {}
    conflicts: dict[str, str] = {}
    ids: dict[int, ServedBot] = {}
    paths: dict[str, ServedBot] = {}
    for want in ordered:
        served = want.served
        first = ids.get(served.bot_id)
        if first is not None:
            conflicts[served.key] = (
                f"bot id {served.bot_id} is served as {first.label} already; one Telegram bot "
                "served twice would take its own updates away"
            )
            continue
        if want.webhook is not None and (holder := paths.get(want.webhook.path)) is not None:
            conflicts[served.key] = (
                f"webhook path {want.webhook.path} is {holder.label}'s already; give each "
                "bot its own webhook URL path"
            )
            continue
        ids[served.bot_id] = served
        if want.webhook is not None:
            paths[want.webhook.path] = served
        serve[served.key] = want
    return Roster(serve=serve, conflicts=conflicts)


def needs_restart(old: Wanted, new: Wanted) -> bool:
    """Whether the bot must be stopped and started again: another token or another way its
    updates come. Admins and the default language change in place."""
    return old.token != new.token or old.webhook != new.webhook


def reports_need_bot_ref(served: Iterable[ServedBot], *, namespace: str) -> bool:
    """Whether choosing the reporter of a Broadcast of ``namespace`` depends on its botRef:
    only when a Bot of that namespace is served."""
    return any(bot.name is not None and bot.namespace == namespace for bot in served)


def reporter_of(
    served: Iterable[ServedBot], *, namespace: str, bot_ref: str | None
) -> ServedBot | None:
    """The served bot that reports a finished Broadcast of ``namespace`` naming ``bot_ref``
    (None: not known, the Broadcast is gone): the Bot it names, else the older form's bot
    when it lists the namespace, as it always did; else nobody here."""
    bots = list(served)
    if bot_ref is not None:
        for bot in bots:
            if bot.name == bot_ref and bot.namespace == namespace:
                return bot
    for bot in bots:
        if bot.name is None and namespace in bot.namespaces:
            return bot
    return None
