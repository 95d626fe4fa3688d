"""The Broadcast custom resource, ``herald.dev/v1alpha1``: the one definition of the contract.

Everything that reads or writes a Broadcast imports these models: the operator parses
``spec`` and writes ``status``, the admin bot builds new Broadcasts, and
:mod:`herald.core.crds` turns the same models into the CRD's OpenAPI schema, so the field
descriptions below are what ``kubectl explain broadcast.spec`` prints.

Rules a schema cannot say (exactly one kind of content, rate caps, immutability) are
:class:`CelRule` objects on the model they constrain. Each carries the CEL expression the API
server evaluates and a Python predicate the model evaluates, with one message for both, so
a spec the API server rejects is also rejected by ``BroadcastSpec.model_validate`` with the
same words. Transition rules (``oldSelf``) compare two versions of an object; only the API
server sees both, so they have no Python predicate.

On the wire fields are camelCase (``botRef``); in Python they are snake_case (``bot_ref``)
and the models accept both. ``model_dump()`` produces the wire form.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, ClassVar, Final, Literal, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)
from pydantic.alias_generators import to_camel

__all__ = [
    "API_VERSION",
    "CAPTION_MAX_LENGTH",
    "DEFAULT_MESSAGES_PER_SECOND",
    "FREE_MESSAGES_PER_SECOND",
    "GROUP",
    "KIND",
    "LANGUAGE_CODE_PATTERN",
    "PAID_MESSAGES_PER_SECOND",
    "PLURAL",
    "SHORT_NAMES",
    "SINGULAR",
    "TEXT_MAX_LENGTH",
    "VERSION",
    "Audience",
    "BotRef",
    "Broadcast",
    "BroadcastSpec",
    "BroadcastStatus",
    "Button",
    "CelRule",
    "Condition",
    "ConditionStatus",
    "ConditionType",
    "Content",
    "ContentKind",
    "CopyFrom",
    "Delivery",
    "LocalizedVariant",
    "Media",
    "MediaType",
    "ObjectMeta",
    "ParseMode",
    "Phase",
    "Rate",
    "Schedule",
    "SubscriberSelector",
]

GROUP = "herald.dev"
VERSION = "v1alpha1"
API_VERSION: Final = "herald.dev/v1alpha1"
KIND: Final = "Broadcast"
PLURAL = "broadcasts"
SINGULAR = "broadcast"
SHORT_NAMES = ("bc",)

# Telegram's own limits: sendMessage text, and the caption of sendPhoto/sendVideo/...
TEXT_MAX_LENGTH = 4096
CAPTION_MAX_LENGTH = 1024
# About 30 messages per second per bot for free, up to 1000 with paid broadcasts.
FREE_MESSAGES_PER_SECOND = 30
PAID_MESSAGES_PER_SECOND = 1000
# Below the free ceiling so that the bot's interactive replies, which share the same
# per-bot budget on Telegram's side, do not push the bot into 429s mid-broadcast.
DEFAULT_MESSAGES_PER_SECOND = 25

# Lowercase IETF tags as Telegram reports them in `language_code` ("en", "pt-br").
LANGUAGE_CODE_PATTERN = r"^[a-z]{2,3}(-[a-z0-9]{2,8}){0,2}$"
_LANGUAGE_CODE_MAX_LENGTH = 20
# Upper bounds exist so the API server can bound the cost of the CEL rules (it rejects a
# CRD whose rules it cannot prove cheap) and so one object stays far below etcd's 1.5 MiB.
_MAX_LANGUAGES = 32
_MAX_TAGS = 32
_MAX_CHAT_IDS = 10_000
_MAX_BUTTON_ROWS = 10
_MAX_BUTTONS_PER_ROW = 8  # Telegram's own limit per inline keyboard row
_BUTTON_TEXT_MAX_LENGTH = 64
_URL_MAX_LENGTH = 2048
# Shorter for buttons: up to 32 languages x 80 buttons each carry a URL rule, and the API
# server's cost estimate of those rules grows with the longest URL allowed.
_BUTTON_URL_MAX_LENGTH = 1024
_FILE_ID_MAX_LENGTH = 256
_BUTTON_URL_PATTERN = r"^(https?|tg)://\S+$"
_MEDIA_URL_PATTERN = r"^https?://\S+$"
# metav1.Condition's own constraints, so conditions look like every other controller's.
_REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
_DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_DATA_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"
_SEGMENT_PATTERN = r"^[a-z0-9]([a-z0-9_-]*[a-z0-9])?$"
_TAG_PATTERN = r"^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$"
# What Kubernetes' `format: date-time` accepts: RFC 3339 with a mandatory offset.
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$",
)


def _cel_string(value: str) -> str:
    """``value`` as a single-quoted CEL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _matches(pattern: str, value: str) -> bool:
    # fullmatch, because Python's `$` also matches before a trailing newline and RE2's does not.
    return re.fullmatch(pattern, value) is not None


@dataclass(frozen=True, kw_only=True)
class CelRule:
    """One rule of the contract, enforced by the API server and by the model alike.

    ``rule`` is a CEL expression over ``self`` (the object of the model the rule sits on,
    in wire names); ``holds`` is the same predicate over the Python model. A rule that
    mentions ``oldSelf`` is a transition rule: it runs on updates only, on the API server.
    """

    rule: str
    message: str
    holds: Callable[[Any], bool] | None = None
    field_path: str | None = None

    def __post_init__(self) -> None:
        if self.holds is None and not self.is_transition:
            raise ValueError(f"CEL rule {self.rule!r} needs a Python predicate")

    @property
    def is_transition(self) -> bool:
        """Whether the rule compares with the previous version (runs on update only)."""
        return "oldSelf" in self.rule

    def as_validation(self) -> dict[str, str]:
        """The rule as an entry of ``x-kubernetes-validations``."""
        validation = {"rule": self.rule, "message": self.message}
        if self.field_path is not None:
            validation["fieldPath"] = self.field_path
        return validation


def _add_cel_rules(schema: dict[str, Any], model: type[Any]) -> None:
    rules: tuple[CelRule, ...] = getattr(model, "cel_rules", ())
    if rules:
        schema["x-kubernetes-validations"] = [rule.as_validation() for rule in rules]


def _immutable(what: str) -> CelRule:
    return CelRule(
        rule="self == oldSelf",
        message=f"{what} is immutable once the Broadcast exists; create a new Broadcast instead",
    )


class _Contract(BaseModel):
    """Base of the spec and status models: immutable, wire names, unknown fields refused."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        json_schema_extra=_add_cel_rules,
    )

    cel_rules: ClassVar[tuple[CelRule, ...]] = ()

    @model_validator(mode="after")
    def _check_cel_rules(self) -> Self:
        for rule in type(self).cel_rules:
            if rule.holds is not None and not rule.holds(self):
                raise ValueError(rule.message)
        return self


def _require_rfc3339(value: object) -> object:
    if isinstance(value, str) and _RFC3339.fullmatch(value) is None:
        raise ValueError(
            f"{value!r} is not an RFC 3339 date-time with a time zone, "
            "such as 2026-12-01T09:00:00Z",
        )
    return value


Timestamp = Annotated[AwareDatetime, BeforeValidator(_require_rfc3339)]
LanguageCode = Annotated[str, Field(min_length=2, max_length=_LANGUAGE_CODE_MAX_LENGTH)]


def _language_codes_valid(codes: Iterable[str] | None) -> bool:
    return codes is None or all(_matches(LANGUAGE_CODE_PATTERN, code) for code in codes)


_LANGUAGE_CODES = "lowercase language codes such as en, ru or pt-br"


# --- enums -----------------------------------------------------------------------------------


class ParseMode(enum.StrEnum):
    """How Telegram interprets markup in the text."""

    HTML = "HTML"
    MARKDOWN_V2 = "MarkdownV2"
    NONE = "None"


class MediaType(enum.StrEnum):
    """Which Bot API method sends the media."""

    PHOTO = "photo"
    VIDEO = "video"
    DOCUMENT = "document"
    ANIMATION = "animation"


class Delivery(enum.StrEnum):
    """What a crash between sending a message and recording it means for that recipient."""

    AT_MOST_ONCE = "atMostOnce"
    AT_LEAST_ONCE = "atLeastOnce"


class ContentKind(enum.StrEnum):
    """Which kind of message a Broadcast sends (derived from ``spec.content``)."""

    TEXT = "text"
    MEDIA = "media"
    COPY = "copy"


class Phase(enum.StrEnum):
    """Display summary of a Broadcast; the conditions are the contract."""

    PENDING = "Pending"
    SCHEDULED = "Scheduled"
    SENDING = "Sending"
    PAUSED = "Paused"
    COMPLETED = "Completed"
    FAILED = "Failed"


class ConditionType(enum.StrEnum):
    """The conditions a Broadcast reports; one set serves kubectl, kstatus, Argo CD and Flux."""

    # Summary for humans and tools: True when neither Reconciling nor Stalled holds, that is
    # complete, or waiting because the spec says so (startAt ahead, spec.paused), so that
    # kstatus (Flux) reads a scheduled or paused Broadcast as Current, not as in progress.
    READY = "Ready"
    # True while work is in progress (kstatus' "Reconciling"; the pipeline's "Progressing").
    RECONCILING = "Reconciling"
    # True when the broadcast cannot go on; the reason says why (kstatus' "Stalled").
    STALLED = "Stalled"
    # True while spec.paused is in effect (Argo CD shows the resource as Suspended).
    PAUSED = "Paused"
    # True when every recipient is terminal: `kubectl wait --for=condition=Complete`.
    COMPLETE = "Complete"
    # Same state and reason as Reconciling, under the name Deployments and most operators
    # use, so `kubectl wait --for=condition=Progressing` and existing dashboards work.
    PROGRESSING = "Progressing"
    # True when the broadcast stopped for good (content rejected, deadline passed, token
    # revoked): the subset of Stalled that no fix to the cluster undoes.
    FAILED = "Failed"


class ConditionStatus(enum.StrEnum):
    """Whether a condition holds, as in metav1.Condition."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


# --- spec ------------------------------------------------------------------------------------


class BotRef(_Contract):
    """The Secret, in the Broadcast's namespace, that holds the bot's token."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        # Switching bots mid-broadcast would split one message across two senders and two
        # subscriber lists.
        _immutable("botRef"),
    )

    name: str = Field(
        min_length=1,
        max_length=253,
        pattern=_DNS_SUBDOMAIN_PATTERN,
        description=(
            "Name of a Secret in the Broadcast's namespace that holds the Telegram bot token "
            "given by @BotFather. The bot's subscribers are the audience; the Secret is read "
            "when sending starts, so it may be created after the Broadcast. Immutable."
        ),
    )
    key: str = Field(
        default="token",
        min_length=1,
        max_length=253,
        pattern=_DATA_KEY_PATTERN,
        description="Key in the Secret's data whose value is the token. Defaults to token.",
    )


class Button(_Contract):
    """An inline keyboard button that opens a URL."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule=f"self.url.matches({_cel_string(_BUTTON_URL_PATTERN)})",
            message="button url must start with https://, http:// or tg://",
            field_path=".url",
            holds=lambda button: _matches(_BUTTON_URL_PATTERN, button.url),
        ),
    )

    text: str = Field(
        min_length=1,
        max_length=_BUTTON_TEXT_MAX_LENGTH,
        description="Label of the button, shown as plain text (no markup).",
    )
    url: str = Field(
        min_length=1,
        max_length=_BUTTON_URL_MAX_LENGTH,
        description=(
            "What the button opens: an https:// or http:// link, or a tg:// link "
            "(for example tg://resolve?domain=channel)."
        ),
    )


ButtonRow = Annotated[
    tuple[Button, ...],
    Field(
        min_length=1,
        max_length=_MAX_BUTTONS_PER_ROW,
        description=f"One row of the keyboard: 1 to {_MAX_BUTTONS_PER_ROW} buttons side by side.",
    ),
]
ButtonRows = Annotated[
    tuple[ButtonRow, ...],
    Field(min_length=1, max_length=_MAX_BUTTON_ROWS),
]


class Media(_Contract):
    """A photo, video, document or animation; spec.content.text becomes its caption."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule="has(self.url) != has(self.fileId)",
            message="media needs exactly one of url or fileId",
            holds=lambda media: (media.url is None) != (media.file_id is None),
        ),
        CelRule(
            rule=f"!has(self.url) || self.url.matches({_cel_string(_MEDIA_URL_PATTERN)})",
            message="media url must start with https:// or http://",
            field_path=".url",
            holds=lambda media: media.url is None or _matches(_MEDIA_URL_PATTERN, media.url),
        ),
    )

    type: MediaType = Field(
        description=(
            "Kind of media, which picks the Bot API method: photo (sendPhoto), video "
            "(sendVideo), document (sendDocument) or animation (sendAnimation, GIF or "
            "soundless MP4)."
        ),
    )
    url: str | None = Field(
        default=None,
        min_length=1,
        max_length=_URL_MAX_LENGTH,
        description=(
            "Public https:// or http:// URL that Telegram downloads the media from. Telegram "
            "fetches it once and reuses the file for the remaining recipients. Exactly one "
            "of url and fileId."
        ),
    )
    file_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=_FILE_ID_MAX_LENGTH,
        description=(
            "file_id of a file already on Telegram's servers, as seen by this bot (file ids "
            "are per bot). Exactly one of url and fileId."
        ),
    )


class CopyFrom(_Contract):
    """An existing message to copy to every recipient (Bot API copyMessage)."""

    chat_id: int = Field(
        json_schema_extra={"format": "int64"},
        description=(
            "Chat the original message is in, for example a channel (-100...) the bot is a "
            "member of. The bot must be able to read the message."
        ),
    )
    message_id: int = Field(
        ge=1,
        json_schema_extra={"format": "int64"},
        description="Identifier of the message in that chat.",
    )


class LocalizedVariant(_Contract):
    """What recipients with one language get instead of the default text and buttons."""

    text: str = Field(
        min_length=1,
        max_length=TEXT_MAX_LENGTH,
        description=(
            "Replaces content.text for this language, in the same parseMode: the message "
            f"text (at most {TEXT_MAX_LENGTH} characters), or the caption when content.media "
            f"is set (at most {CAPTION_MAX_LENGTH})."
        ),
    )
    buttons: ButtonRows | None = Field(
        default=None,
        description=(
            "Replaces content.buttons for this language, for example to translate the "
            "labels. When absent, content.buttons is used."
        ),
    )


def _caption_fits(content: Content) -> bool:
    if content.media is None:
        return True
    texts = [content.text] if content.text is not None else []
    texts += [variant.text for variant in (content.localized or {}).values()]
    return all(len(text) <= CAPTION_MAX_LENGTH for text in texts)


class Content(_Contract):
    """The message: text, media (with text as its caption), or a copy of an existing post."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule="has(self.text) || has(self.media) || has(self.copyFrom)",
            message=(
                "content needs a message: set text, media (text is then its caption) or copyFrom"
            ),
            holds=lambda c: c.text is not None or c.media is not None or c.copy_from is not None,
        ),
        CelRule(
            rule="!has(self.copyFrom) || (!has(self.text) && !has(self.media))",
            message=(
                "copyFrom sends an existing message as it is: set either copyFrom or "
                "text/media, not both"
            ),
            holds=lambda c: c.copy_from is None or (c.text is None and c.media is None),
        ),
        CelRule(
            rule="!has(self.copyFrom) || !has(self.localized)",
            message="localized variants need text or media; copyFrom sends one message to all",
            field_path=".localized",
            holds=lambda c: c.copy_from is None or c.localized is None,
        ),
        CelRule(
            rule=(
                f"!has(self.media) || !has(self.text) || size(self.text) <= {CAPTION_MAX_LENGTH}"
            ),
            message=(
                f"text is the caption when media is set and may have at most "
                f"{CAPTION_MAX_LENGTH} characters"
            ),
            field_path=".text",
            holds=lambda c: c.media is None or c.text is None or len(c.text) <= CAPTION_MAX_LENGTH,
        ),
        CelRule(
            rule=(
                "!has(self.media) || !has(self.localized) || self.localized.all(lang, "
                f"size(self.localized[lang].text) <= {CAPTION_MAX_LENGTH})"
            ),
            message=(
                f"localized texts are captions when media is set and may have at most "
                f"{CAPTION_MAX_LENGTH} characters"
            ),
            field_path=".localized",
            holds=_caption_fits,
        ),
        CelRule(
            rule=(
                "!has(self.localized) || self.localized.all(lang, "
                f"lang.matches({_cel_string(LANGUAGE_CODE_PATTERN)}))"
            ),
            message=f"localized keys must be {_LANGUAGE_CODES}",
            field_path=".localized",
            holds=lambda c: _language_codes_valid(c.localized),
        ),
        _immutable("content"),
    )

    text: str | None = Field(
        default=None,
        min_length=1,
        max_length=TEXT_MAX_LENGTH,
        description=(
            f"Text of the message, at most {TEXT_MAX_LENGTH} characters, formatted per "
            f"parseMode. When media is set this is the media's caption, at most "
            f"{CAPTION_MAX_LENGTH} characters. Lengths count the source including markup, "
            "which is stricter than Telegram (it counts after parsing)."
        ),
    )
    parse_mode: ParseMode = Field(
        default=ParseMode.HTML,
        description=(
            "How Telegram parses text and captions: HTML (default; <b>, <i>, <a href>...), "
            "MarkdownV2, or None for plain text. Markup Telegram rejects stops the Broadcast "
            "(Stalled) after the first sends instead of failing every recipient. Ignored "
            "with copyFrom."
        ),
    )
    media: Media | None = Field(
        default=None,
        description="Media to send, with text as its caption. Excludes copyFrom.",
    )
    copy_from: CopyFrom | None = Field(
        default=None,
        description=(
            "Copy an existing message (Bot API copyMessage) instead of composing one: its "
            "text, media and caption are sent as they are, without a 'forwarded from' header. "
            "Excludes text, media and localized."
        ),
    )
    buttons: ButtonRows | None = Field(
        default=None,
        description=(
            f"Inline keyboard under the message: up to {_MAX_BUTTON_ROWS} rows of up to "
            f"{_MAX_BUTTONS_PER_ROW} URL buttons each."
        ),
    )
    disable_notification: bool = Field(
        default=False,
        description="Deliver silently: recipients get the message without a sound.",
    )
    protect_content: bool = Field(
        default=False,
        description="Protect the message from forwarding and saving.",
    )
    localized: dict[str, LocalizedVariant] | None = Field(
        default=None,
        max_length=_MAX_LANGUAGES,
        description=(
            "Per-language variants, keyed by lowercase language code (en, ru, pt-br). A "
            "recipient whose Telegram language is pt-br gets the pt-br variant, else the pt "
            "variant, else the default text and buttons. Needs text or media."
        ),
    )

    @property
    def kind(self) -> ContentKind:
        """Which Bot API call sends this content."""
        if self.copy_from is not None:
            return ContentKind.COPY
        if self.media is not None:
            return ContentKind.MEDIA
        return ContentKind.TEXT

    def variant_for(self, language_code: str | None) -> LocalizedVariant | None:
        """The variant for a recipient's language: exact tag, then its primary language.

        ``None`` means the default ``text`` and ``buttons``.
        """
        if not self.localized or not language_code:
            return None
        code = language_code.lower()
        return self.localized.get(code) or self.localized.get(code.split("-", 1)[0])


class SubscriberSelector(_Contract):
    """Selects active subscribers of the bot; {} selects all of them."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule=(
                "!has(self.languages) || self.languages.all(lang, "
                f"lang.matches({_cel_string(LANGUAGE_CODE_PATTERN)}))"
            ),
            message=f"languages must be {_LANGUAGE_CODES}",
            field_path=".languages",
            holds=lambda s: _language_codes_valid(s.languages),
        ),
    )

    languages: tuple[LanguageCode, ...] | None = Field(
        default=None,
        min_length=1,
        max_length=_MAX_LANGUAGES,
        description=(
            "Only subscribers whose Telegram language is one of these lowercase codes; "
            "en also matches en-us. Absent: any language."
        ),
    )
    tags: (
        tuple[Annotated[str, Field(min_length=1, max_length=63, pattern=_TAG_PATTERN)], ...] | None
    ) = Field(
        default=None,
        min_length=1,
        max_length=_MAX_TAGS,
        description=(
            "Only subscribers that carry at least one of these tags (set by the "
            "application in the subscriber table). Absent: any tags."
        ),
    )


class Audience(_Contract):
    """Who receives the message: the union of all selectors set, deduplicated.

    Subscribers who blocked the bot are always excluded.
    """

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule="has(self.subscribers) || has(self.segment) || has(self.chatIds)",
            message=(
                "audience needs at least one selector: subscribers ({} for all active "
                "subscribers), segment or chatIds"
            ),
            holds=lambda a: (
                a.subscribers is not None or a.segment is not None or a.chat_ids is not None
            ),
        ),
        # The ledger is materialised from the audience once; changing it afterwards would
        # silently not apply to recipients already counted.
        _immutable("audience"),
    )

    subscribers: SubscriberSelector | None = Field(
        default=None,
        description=(
            "Active subscribers of the bot (those who sent /start and have not blocked it), "
            "optionally filtered by language and tags. {} selects all of them."
        ),
    )
    segment: str | None = Field(
        default=None,
        min_length=1,
        max_length=48,
        pattern=_SEGMENT_PATTERN,
        description=(
            "Name of an application-maintained Postgres view herald_segment_<name> with a "
            "chat_id column, dashes in the name becoming underscores (unfinished-poll reads "
            "herald_segment_unfinished_poll). Read once, when the Broadcast starts."
        ),
    )
    chat_ids: tuple[Annotated[int, Field(json_schema_extra={"format": "int64"})], ...] | None = (
        Field(
            default=None,
            min_length=1,
            max_length=_MAX_CHAT_IDS,
            description=(
                f"Explicit Telegram chat ids (users, groups or channels), up to {_MAX_CHAT_IDS}. "
                "For larger audiences use a segment."
            ),
        )
    )

    @property
    def segment_view(self) -> str | None:
        """The Postgres view that backs ``segment``, a valid unquoted identifier."""
        if self.segment is None:
            return None
        return "herald_segment_" + self.segment.replace("-", "_")


class Rate(_Contract):
    """How fast messages leave, across all sender replicas together."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule=f"self.allowPaidBroadcast || self.messagesPerSecond <= {FREE_MESSAGES_PER_SECOND}",
            message=(
                f"messagesPerSecond above {FREE_MESSAGES_PER_SECOND} needs allowPaidBroadcast: "
                f"true (Telegram allows about {FREE_MESSAGES_PER_SECOND} messages per second "
                "per bot for free)"
            ),
            field_path=".messagesPerSecond",
            holds=lambda r: (
                r.allow_paid_broadcast or r.messages_per_second <= FREE_MESSAGES_PER_SECOND
            ),
        ),
        CelRule(
            rule="!has(self.starsBudget) || self.allowPaidBroadcast",
            message="starsBudget limits paid broadcasts: it needs allowPaidBroadcast: true",
            field_path=".starsBudget",
            holds=lambda r: r.stars_budget is None or r.allow_paid_broadcast,
        ),
    )

    messages_per_second: int = Field(
        default=DEFAULT_MESSAGES_PER_SECOND,
        ge=1,
        le=PAID_MESSAGES_PER_SECOND,
        description=(
            f"Messages per second for this Broadcast, summed over all senders. 1 to "
            f"{FREE_MESSAGES_PER_SECOND}, or up to {PAID_MESSAGES_PER_SECOND} with "
            f"allowPaidBroadcast. Defaults to {DEFAULT_MESSAGES_PER_SECOND}, below Telegram's "
            f"free limit of about {FREE_MESSAGES_PER_SECOND} per bot, to leave room for the "
            "bot's other traffic. Broadcasts of the same bot running at once also share the "
            "bot's limit. Can be changed while sending."
        ),
    )
    allow_paid_broadcast: bool = Field(
        default=False,
        description=(
            "Send with allow_paid_broadcast, which lifts Telegram's limit to about "
            f"{PAID_MESSAGES_PER_SECOND} messages per second and is paid in Telegram Stars "
            "from the bot's balance for messages above the free rate. Defaults to false."
        ),
    )
    stars_budget: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Most Telegram Stars this Broadcast may spend on paid broadcasting. When it is "
            "spent the Broadcast stops (Stalled, reason BudgetExhausted). Absent: no limit "
            "beyond the bot's balance. Needs allowPaidBroadcast."
        ),
    )


class Schedule(_Contract):
    """When sending may happen."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule=(
                "!has(self.startAt) || !has(self.deadline) || "
                "timestamp(self.deadline) > timestamp(self.startAt)"
            ),
            message="deadline must be later than startAt",
            field_path=".deadline",
            holds=lambda s: s.start_at is None or s.deadline is None or s.deadline > s.start_at,
        ),
    )

    start_at: Timestamp | None = Field(
        default=None,
        description=(
            "RFC 3339 time (for example 2026-12-01T09:00:00Z) before which nothing is sent; "
            "until then the Broadcast is Scheduled. Absent or past: start at once."
        ),
    )
    deadline: Timestamp | None = Field(
        default=None,
        description=(
            "RFC 3339 time after which nothing more is sent: recipients not reached by then "
            "are counted as failed with reason DeadlineExceeded and the Broadcast is Stalled. "
            "Must be later than startAt."
        ),
    )


class BroadcastSpec(_Contract):
    """What to send, to whom, how fast and when."""

    bot_ref: BotRef = Field(
        description="The bot that sends, by the Secret holding its token. Immutable.",
    )
    content: Content = Field(
        description=(
            "The message, exactly one kind: text; media with text as its caption; or "
            "copyFrom, a copy of an existing message. Immutable: to send something else, "
            "create a new Broadcast."
        ),
    )
    audience: Audience = Field(
        description=(
            "Who receives the message: the union of subscribers, segment and chatIds, "
            "deduplicated, without recipients who blocked the bot. Immutable."
        ),
    )
    rate: Rate = Field(
        default_factory=Rate,
        # Spelled out because the API server checks a default against the CEL rules as it
        # is, before the nested defaults would fill an empty object in.
        json_schema_extra={"default": Rate().model_dump(mode="json", exclude_none=True)},
        description=(
            f"Sending rate; defaults to {DEFAULT_MESSAGES_PER_SECOND} messages per second "
            "without paid broadcasting."
        ),
    )
    schedule: Schedule | None = Field(
        default=None,
        description="Start time and deadline. Absent: start at once, no deadline.",
    )
    delivery: Delivery = Field(
        default=Delivery.AT_MOST_ONCE,
        description=(
            "What a crash between sending a message and recording it means. Telegram has "
            "no idempotency key, so exactly-once is impossible. atMostOnce (default): the "
            "recipient is counted as uncertain and never sent again. atLeastOnce: the "
            "message is sent again, so the recipient may get it twice."
        ),
    )
    paused: bool = Field(
        default=False,
        description=(
            "Pause switch: true stops new sends within about a second; false resumes where "
            "sending stopped, without sending anything twice. Example: kubectl patch "
            'broadcast NAME --type=merge -p \'{"spec":{"paused":true}}\'.'
        ),
    )


# --- status ----------------------------------------------------------------------------------


Counter = Annotated[int, Field(ge=0, json_schema_extra={"format": "int64"})]


class Condition(_Contract):
    """One observation of the Broadcast's state, shaped like metav1.Condition."""

    type: ConditionType = Field(
        description=(
            "Ready: True when neither Reconciling nor Stalled holds: complete, or waiting "
            "as the spec asks (Scheduled, Paused). Reconciling: sending or preparing. "
            "Stalled: cannot go on, the reason says why. Paused: spec.paused is in effect. "
            "Complete: every recipient reached a terminal state."
        ),
    )
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        min_length=1,
        max_length=1024,
        pattern=_REASON_PATTERN,
        description="Why the condition is as it is, a CamelCase word such as BotSecretNotFound.",
    )
    message: str = Field(
        max_length=32768,
        description="Human-readable details; may be empty.",
    )
    last_transition_time: Timestamp = Field(
        description="When status last changed (not when the condition was last written).",
    )
    observed_generation: Counter | None = Field(
        default=None,
        description="metadata.generation of the spec this condition was computed from.",
    )


class BroadcastStatus(_Contract):
    """What the operator observed, refreshed every few seconds while the Broadcast runs."""

    phase: Phase | None = Field(
        default=None,
        description=(
            "One-word summary for display, derived from the conditions (which are the "
            "contract): Pending, Scheduled, Sending, Paused, Completed or Failed."
        ),
    )
    total: Counter = Field(default=0, description="Recipients in the materialised audience.")
    delivered: Counter = Field(
        default=0, description="Recipients Telegram accepted the message for."
    )
    failed: Counter = Field(
        default=0,
        description=(
            "Recipients that could not be reached (chat not found, retries exhausted, "
            "deadline passed)."
        ),
    )
    blocked: Counter = Field(
        default=0,
        description=(
            "Recipients who blocked the bot or deleted their account; they are now inactive "
            "subscribers."
        ),
    )
    pending: Counter = Field(default=0, description="Recipients not yet in a terminal state.")
    uncertain: Counter = Field(
        default=0,
        description=(
            "Recipients whose send was interrupted by a crash before its outcome was "
            "recorded (atMostOnce): they may or may not have the message and are not retried."
        ),
    )
    progress: str | None = Field(
        default=None,
        pattern=r"^(100|[1-9]?[0-9])%$",
        description="Share of recipients in a terminal state, as a whole percentage like 42%.",
    )
    observed_rate: float | None = Field(
        default=None,
        ge=0,
        description="Messages per second over the last refresh interval, all senders together.",
    )
    started_at: Timestamp | None = Field(
        default=None, description="When the first message was sent."
    )
    completed_at: Timestamp | None = Field(
        default=None,
        description="When every recipient reached a terminal state.",
    )
    eta: Timestamp | None = Field(
        default=None,
        description="Estimated completion time at the current rate; absent when paused or done.",
    )
    observed_generation: Counter | None = Field(
        default=None,
        description=(
            "metadata.generation of the spec this status reflects; written on every "
            "reconcile, paused or not, so GitOps health checks know the status is current."
        ),
    )
    conditions: tuple[Condition, ...] = Field(
        default=(),
        max_length=16,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
        description=(
            "Ready, Reconciling, Stalled, Paused and Complete, at most one of each type. "
            "Wait for the end with: kubectl wait --for=condition=Complete broadcast/NAME."
        ),
    )

    def condition(self, type_: ConditionType) -> Condition | None:
        """The condition of this type, if reported."""
        return next((c for c in self.conditions if c.type == type_), None)


# --- the whole object ------------------------------------------------------------------------


class ObjectMeta(BaseModel):
    """The parts of Kubernetes object metadata Herald reads; the rest is ignored."""

    model_config = ConfigDict(
        frozen=True,
        extra="ignore",
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )

    name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    generation: int | None = None
    resource_version: str | None = None
    creation_timestamp: datetime | None = None
    labels: Mapping[str, str] | None = None
    annotations: Mapping[str, str] | None = None


class Broadcast(BaseModel):
    """A Broadcast as stored by the API server: envelope, spec and status."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )

    api_version: Literal["herald.dev/v1alpha1"] = API_VERSION
    kind: Literal["Broadcast"] = KIND
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: BroadcastSpec
    status: BroadcastStatus | None = None
