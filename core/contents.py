"""What a Broadcast sends: ``spec.content`` and its parts (buttons, a message to copy, link
preview options, per-language variants; the media and albums are :mod:`herald.core.media`'s),
with Telegram's own limits.

Part of the Broadcast contract (:mod:`herald.core.broadcasts`); the senders' renderer
(:mod:`herald.telegram.rendering`) turns a :class:`Content` into Bot API calls, and the control
record carries it to the senders as it is.

Over 400 lines because it is one subtree of the CRD: the size caps and the CEL rules of
``Content`` reach into every part (buttons, media, albums, variants), and the CRD generator
reads the parts in the order the schema nests them; apart, each rule would import the
others' limits. The files (media, albums) are apart: their rules need nothing of the rest.
"""

from __future__ import annotations

import enum
from typing import Annotated, ClassVar

from pydantic import Field

from herald.core.audiences import TAG_PATTERN
from herald.core.contracts import (
    LANGUAGE_CODE_PATTERN,
    LANGUAGE_CODES,
    MAX_LANGUAGES,
    CelRule,
    Contract,
    cel_string,
    immutable,
    language_codes_valid,
    matches,
)
from herald.core.media import (
    CAPTION_ABOVE_TYPES,
    MEDIA_URL_PATTERN,
    URL_MAX_LENGTH,
    Album,
    AlbumItem,
    Media,
    album_homogeneous,
)

__all__ = [
    "CALLBACK_ANSWER_MAX_LENGTH",
    "CALLBACK_ID_MAX_LENGTH",
    "CALLBACK_ID_PATTERN",
    "CAPTION_MAX_LENGTH",
    "CONTENT_MAX_BUTTONS",
    "CONTENT_MAX_CHARACTERS",
    "TEXT_MAX_LENGTH",
    "Button",
    "Content",
    "ContentKind",
    "CopyFrom",
    "LinkPreview",
    "LocalizedVariant",
    "ParseMode",
    "callback_buttons",
    "content_buttons",
    "content_characters",
]

# Telegram's own limits: sendMessage text, and the caption of sendPhoto/sendVideo/...
TEXT_MAX_LENGTH = 4096
CAPTION_MAX_LENGTH = 1024
# Bounded for the API server's cost estimate of the CEL rules (see herald.core.contracts).
_MAX_BUTTON_ROWS = 10
_MAX_BUTTONS_PER_ROW = 8  # Telegram's own limit per inline keyboard row
_BUTTON_TEXT_MAX_LENGTH = 64
# Shorter for buttons: up to 32 languages x 80 buttons each carry a URL rule, and the API
# server's cost estimate of those rules grows with the longest URL allowed.
_BUTTONURL_MAX_LENGTH = 1024
_BUTTON_URL_PATTERN = r"^(https?|tg)://\S+$"
# Callback ids travel inside Telegram's 64-byte callback_data beside the broadcast's id
# (herald.telegram.rendering): ASCII only, so characters are bytes.
CALLBACK_ID_MAX_LENGTH = 32
CALLBACK_ID_PATTERN = r"^[A-Za-z0-9_-]+$"
CALLBACK_ANSWER_MAX_LENGTH = 200  # Telegram's limit for answerCallbackQuery text
# The Bot API reads message_effect_id as a 64-bit integer.
_EFFECT_ID_PATTERN = r"^[0-9]{1,20}$"
# The whole content, every variant together. Each field's own cap is Telegram's, but 33
# variants at their caps would be megabytes: past the 256 KiB the API server allows all of a
# Broadcast's annotations, where kopf keeps a copy of the spec (JSON with every non-ASCII
# character escaped: up to 12 bytes for one emoji) beside kubectl's last-applied copy (up to
# 6 bytes for one character). At these caps the worst case of both together stays under
# 200 KiB (tests/core/test_contents.py computes it), and a control record on NATS under
# 64 KiB, far below its 1 MiB payload limit.
CONTENT_MAX_CHARACTERS = 12_000
CONTENT_MAX_BUTTONS = 100


class ParseMode(enum.StrEnum):
    """How Telegram interprets markup in the text."""

    HTML = "HTML"
    MARKDOWN_V2 = "MarkdownV2"
    NONE = "None"


class ContentKind(enum.StrEnum):
    """Which kind of message a Broadcast sends (derived from ``spec.content``)."""

    TEXT = "text"
    MEDIA = "media"
    ALBUM = "album"
    COPY = "copy"


class Button(Contract):
    """An inline keyboard button: a link to open, or a callback the bot answers and counts."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule="has(self.url) != has(self.callback)",
            message="a button needs exactly one of url or callback",
            holds=lambda button: (button.url is None) != (button.callback is None),
        ),
        CelRule(
            rule=f"!has(self.url) || self.url.matches({cel_string(_BUTTON_URL_PATTERN)})",
            message="button url must start with https://, http:// or tg://",
            field_path=".url",
            holds=lambda button: button.url is None or matches(_BUTTON_URL_PATTERN, button.url),
        ),
        CelRule(
            rule="has(self.callback) || (!has(self.answer) && !has(self.tag))",
            message="answer and tag belong to callback buttons; a url button opens its link",
            holds=lambda button: (
                button.callback is not None or (button.answer is None and button.tag is None)
            ),
        ),
    )

    text: str = Field(
        min_length=1,
        max_length=_BUTTON_TEXT_MAX_LENGTH,
        description="Label of the button, shown as plain text (no markup).",
    )
    url: str | None = Field(
        default=None,
        min_length=1,
        max_length=_BUTTONURL_MAX_LENGTH,
        description=(
            "What the button opens: an https:// or http:// link, or a tg:// link "
            "(for example tg://resolve?domain=channel). Exactly one of url and callback."
        ),
    )
    callback: str | None = Field(
        default=None,
        min_length=1,
        max_length=CALLBACK_ID_MAX_LENGTH,
        pattern=CALLBACK_ID_PATTERN,
        description=(
            f"Id of a callback button (letters, digits, _ and -, at most "
            f"{CALLBACK_ID_MAX_LENGTH}): a press is answered by the bot and counted once per "
            "chat in status.clicks under this id. Exactly one of url and callback."
        ),
    )
    answer: str | None = Field(
        default=None,
        min_length=1,
        max_length=CALLBACK_ANSWER_MAX_LENGTH,
        description=(
            f"Notification the user sees on pressing a callback button (at most "
            f"{CALLBACK_ANSWER_MAX_LENGTH} characters). Absent: the press is answered silently."
        ),
    )
    tag: str | None = Field(
        default=None,
        min_length=1,
        max_length=63,
        pattern=TAG_PATTERN,
        description=(
            "Subscriber tag added to the pressing chat, on this Broadcast's bot, so a later "
            "Broadcast can select audience.subscribers.tags: [this tag]."
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


class LinkPreview(Contract):
    """How Telegram previews a link of a text message (Bot API LinkPreviewOptions)."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule="!(has(self.preferSmallMedia) && self.preferSmallMedia"
            " && has(self.preferLargeMedia) && self.preferLargeMedia)",
            message="a link preview prefers small or large media, not both",
            holds=lambda p: not (p.prefer_small_media and p.prefer_large_media),
        ),
        CelRule(
            rule="!has(self.disabled) || !self.disabled || (!has(self.url)"
            " && !(has(self.preferSmallMedia) && self.preferSmallMedia)"
            " && !(has(self.preferLargeMedia) && self.preferLargeMedia)"
            " && !(has(self.showAboveText) && self.showAboveText))",
            message="a disabled link preview takes no other option",
            holds=lambda p: (
                not p.disabled
                or (
                    p.url is None
                    and not p.prefer_small_media
                    and not p.prefer_large_media
                    and not p.show_above_text
                )
            ),
        ),
        CelRule(
            rule=f"!has(self.url) || self.url.matches({cel_string(MEDIA_URL_PATTERN)})",
            message="link preview url must start with https:// or http://",
            field_path=".url",
            holds=lambda p: p.url is None or matches(MEDIA_URL_PATTERN, p.url),
        ),
    )

    disabled: bool = Field(default=False, description="Show no link preview at all.")
    url: str | None = Field(
        default=None,
        min_length=1,
        max_length=URL_MAX_LENGTH,
        description=(
            "The link to preview, instead of the first link of the text; it need not "
            "appear in the text."
        ),
    )
    prefer_small_media: bool = Field(
        default=False,
        description="Shrink the preview's media, when the page allows a smaller one.",
    )
    prefer_large_media: bool = Field(
        default=False,
        description="Enlarge the preview's media, when the page allows a larger one.",
    )
    show_above_text: bool = Field(
        default=False, description="Show the preview above the text instead of below it."
    )


class CopyFrom(Contract):
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


class LocalizedVariant(Contract):
    """What recipients with one language get instead of the default text and buttons."""

    text: str = Field(
        min_length=1,
        max_length=TEXT_MAX_LENGTH,
        description=(
            "Replaces content.text for this language, in the same parseMode: the message "
            f"text (at most {TEXT_MAX_LENGTH} characters), or the caption when content.media "
            f"or content.album is set (at most {CAPTION_MAX_LENGTH})."
        ),
    )
    buttons: ButtonRows | None = Field(
        default=None,
        description=(
            "Replaces content.buttons for this language, for example to translate the "
            "labels. When absent, content.buttons is used."
        ),
    )


def _rows_characters(rows: tuple[tuple[Button, ...], ...] | None) -> int:
    return sum(
        len(b.text) + len(b.url or "") + len(b.callback or "") + len(b.answer or "")
        for row in rows or ()
        for b in row
    )


def _links_characters(content: Content) -> int:
    files: list[Media | AlbumItem] = [content.media] if content.media is not None else []
    files += content.album or ()
    preview = content.link_preview.url if content.link_preview is not None else None
    return sum(len(f.url or "") + len(f.file_id or "") for f in files) + len(preview or "")


def content_characters(content: Content) -> int:
    """What CONTENT_MAX_CHARACTERS counts: every text, button label and button URL, the URL
    or file_id of the media and of every album item, and the link preview's URL."""
    total = len(content.text or "") + _rows_characters(content.buttons)
    total += _links_characters(content)
    for variant in (content.localized or {}).values():
        total += len(variant.text) + _rows_characters(variant.buttons)
    return total


def callback_buttons(content: Content) -> dict[str, Button]:
    """Every callback button of the content, default and variants, by callback id.

    A variant's button with the same id as the default's is the same button in another
    language: the first one seen (the default's) says its answer and tag.
    """
    rows = list(content.buttons or ())
    for variant in (content.localized or {}).values():
        rows += variant.buttons or ()
    found: dict[str, Button] = {}
    for row in rows:
        for button in row:
            if button.callback is not None:
                found.setdefault(button.callback, button)
    return found


def content_buttons(content: Content) -> int:
    """What CONTENT_MAX_BUTTONS counts: the buttons of the default and of every variant."""
    rows = list(content.buttons or ())
    for variant in (content.localized or {}).values():
        rows += variant.buttons or ()
    return sum(len(row) for row in rows)


_ROWS_CHARACTERS = (
    "{0}.map(r, r.map(b, size(b.text)"
    " + (has(b.url) ? size(b.url) : 0)"
    " + (has(b.callback) ? size(b.callback) : 0)"
    " + (has(b.answer) ? size(b.answer) : 0)).sum()).sum()"
)
_ROWS_BUTTONS = "{0}.map(r, size(r)).sum()"


def _over_variants(term: str) -> str:
    """CEL: `term` (over `v`, one variant) summed over content.localized."""
    return (
        "(has(self.localized) ? self.localized.map(l, "
        + term.replace("v.", "self.localized[l].")
        + ").sum() : 0)"
    )


_FILE_CHARACTERS = "(has({0}.url) ? size({0}.url) : 0) + (has({0}.fileId) ? size({0}.fileId) : 0)"
_LINKS_CHARACTERS = (
    "(has(self.media) ? " + _FILE_CHARACTERS.format("self.media") + " : 0)"
    " + (has(self.album) ? self.album.map(m, " + _FILE_CHARACTERS.format("m") + ").sum() : 0)"
    " + (has(self.linkPreview) && has(self.linkPreview.url) ? size(self.linkPreview.url) : 0)"
)


def _captioned(content: Content) -> bool:
    return content.media is not None or content.album is not None


def _caption_fits(content: Content) -> bool:
    if not _captioned(content):
        return True
    texts = [content.text] if content.text is not None else []
    texts += [variant.text for variant in (content.localized or {}).values()]
    return all(len(text) <= CAPTION_MAX_LENGTH for text in texts)


def _caption_above_fits(content: Content) -> bool:
    if not content.show_caption_above_media:
        return True
    if content.text is None:
        return False
    if content.media is not None:
        return content.media.type in CAPTION_ABOVE_TYPES
    return content.album is not None and all(
        item.type in CAPTION_ABOVE_TYPES for item in content.album
    )


def _no_album_buttons(content: Content) -> bool:
    if content.album is None:
        return True
    variants = (content.localized or {}).values()
    return content.buttons is None and all(v.buttons is None for v in variants)


_CAPTIONED = "(has(self.media) || has(self.album))"
_ABOVE_TYPES = "[" + ", ".join(sorted(f"'{t}'" for t in CAPTION_ABOVE_TYPES)) + "]"
# Of the album's types, those whose caption may sit above them.
_ALBUM_ABOVE_TYPES = "['photo', 'video']"


class Content(Contract):
    """The message: text, media or an album (with text as its caption), or a copy of an
    existing post."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule="has(self.text) || has(self.media) || has(self.album) || has(self.copyFrom)",
            message=(
                "content needs a message: set text, media or album (text is then its caption) "
                "or copyFrom"
            ),
            holds=lambda c: (
                c.text is not None
                or c.media is not None
                or c.album is not None
                or c.copy_from is not None
            ),
        ),
        CelRule(
            rule="!has(self.copyFrom) || (!has(self.text) && !has(self.media) && !has(self.album))",
            message=(
                "copyFrom sends an existing message as it is: set either copyFrom or "
                "text/media/album, not both"
            ),
            holds=lambda c: c.copy_from is None or (c.text is None and not _captioned(c)),
        ),
        CelRule(
            rule="!has(self.media) || !has(self.album)",
            message="set either media (one file) or album (several), not both",
            holds=lambda c: c.media is None or c.album is None,
        ),
        CelRule(
            rule=(
                "!has(self.album) || "
                "self.album.all(m, m.type == 'photo' || m.type == 'video') || "
                "self.album.all(m, m.type == 'document') || "
                "self.album.all(m, m.type == 'audio')"
            ),
            message=(
                "an album holds photos and videos, or documents only, or audio files only: "
                "Telegram does not mix documents or audio files with other media"
            ),
            field_path=".album",
            holds=lambda c: c.album is None or album_homogeneous(c.album),
        ),
        CelRule(
            rule=(
                "!has(self.album) || (!has(self.buttons) && (!has(self.localized) || "
                "self.localized.all(l, !has(self.localized[l].buttons))))"
            ),
            message=(
                "an album carries no buttons (Telegram's sendMediaGroup takes no keyboard): "
                "remove buttons, or send them in a text or media Broadcast"
            ),
            field_path=".buttons",
            holds=_no_album_buttons,
        ),
        CelRule(
            rule=(
                "!has(self.linkPreview) || (has(self.text) && !has(self.media) && !has(self.album))"
            ),
            message="linkPreview belongs to text messages: not with media, album or copyFrom",
            field_path=".linkPreview",
            holds=lambda c: c.link_preview is None or (c.text is not None and not _captioned(c)),
        ),
        CelRule(
            rule=(
                "!has(self.showCaptionAboveMedia) || !self.showCaptionAboveMedia || "
                "(has(self.text) && ((has(self.media) && self.media.type in "
                + _ABOVE_TYPES
                + ") || (has(self.album) && self.album.all(m, m.type in "
                + _ALBUM_ABOVE_TYPES
                + "))))"
            ),
            message=(
                "showCaptionAboveMedia needs text (the caption) with a photo, video or "
                "animation, or with an album of photos and videos"
            ),
            field_path=".showCaptionAboveMedia",
            holds=_caption_above_fits,
        ),
        CelRule(
            rule="!has(self.copyFrom) || !has(self.localized)",
            message=(
                "localized variants need text, media or album; copyFrom sends one message to all"
            ),
            field_path=".localized",
            holds=lambda c: c.copy_from is None or c.localized is None,
        ),
        CelRule(
            rule=(f"!{_CAPTIONED} || !has(self.text) || size(self.text) <= {CAPTION_MAX_LENGTH}"),
            message=(
                f"text is the caption when media or album is set and may have at most "
                f"{CAPTION_MAX_LENGTH} characters"
            ),
            field_path=".text",
            holds=lambda c: (
                not _captioned(c) or c.text is None or len(c.text) <= CAPTION_MAX_LENGTH
            ),
        ),
        CelRule(
            rule=(
                f"!{_CAPTIONED} || !has(self.localized) || self.localized.all(lang, "
                f"size(self.localized[lang].text) <= {CAPTION_MAX_LENGTH})"
            ),
            message=(
                f"localized texts are captions when media or album is set and may have at "
                f"most {CAPTION_MAX_LENGTH} characters"
            ),
            field_path=".localized",
            holds=_caption_fits,
        ),
        CelRule(
            rule=(
                "!has(self.localized) || self.localized.all(lang, "
                f"lang.matches({cel_string(LANGUAGE_CODE_PATTERN)}))"
            ),
            message=f"localized keys must be {LANGUAGE_CODES}",
            field_path=".localized",
            holds=lambda c: language_codes_valid(c.localized),
        ),
        CelRule(
            rule=(
                "(has(self.text) ? size(self.text) : 0)"
                " + (has(self.buttons) ? " + _ROWS_CHARACTERS.format("self.buttons") + " : 0)"
                " + "
                + _LINKS_CHARACTERS
                + " + "
                + _over_variants(
                    "size(v.text) + (has(v.buttons) ? "
                    + _ROWS_CHARACTERS.format("v.buttons")
                    + " : 0)"
                )
                + f" <= {CONTENT_MAX_CHARACTERS}"
            ),
            message=(
                f"content is too large: its texts, button labels and button URLs, every "
                f"localized variant included, its media URLs or file ids and its link "
                f"preview URL may hold at most {CONTENT_MAX_CHARACTERS} characters in all"
            ),
            holds=lambda c: content_characters(c) <= CONTENT_MAX_CHARACTERS,
        ),
        CelRule(
            rule=(
                "(has(self.buttons) ? " + _ROWS_BUTTONS.format("self.buttons") + " : 0)"
                " + "
                + _over_variants("(has(v.buttons) ? " + _ROWS_BUTTONS.format("v.buttons") + " : 0)")
                + f" <= {CONTENT_MAX_BUTTONS}"
            ),
            message=(
                f"content is too large: it may have at most {CONTENT_MAX_BUTTONS} buttons in "
                "all, every localized variant's included"
            ),
            holds=lambda c: content_buttons(c) <= CONTENT_MAX_BUTTONS,
        ),
        immutable("content"),
    )

    text: str | None = Field(
        default=None,
        min_length=1,
        max_length=TEXT_MAX_LENGTH,
        description=(
            f"Text of the message, at most {TEXT_MAX_LENGTH} characters, formatted per "
            f"parseMode. When media or album is set this is the caption, at most "
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
        description="Media to send, with text as its caption. Excludes album and copyFrom.",
    )
    album: Album | None = None
    copy_from: CopyFrom | None = Field(
        default=None,
        description=(
            "Copy an existing message (Bot API copyMessage) instead of composing one: its "
            "text, media and caption are sent as they are, without a 'forwarded from' header. "
            "Excludes text, media, album and localized."
        ),
    )
    buttons: ButtonRows | None = Field(
        default=None,
        description=(
            f"Inline keyboard under the message: up to {_MAX_BUTTON_ROWS} rows of up to "
            f"{_MAX_BUTTONS_PER_ROW} buttons each, URL or callback buttons. Not with album."
        ),
    )
    link_preview: LinkPreview | None = Field(
        default=None,
        description=(
            "How the text's link is previewed (Bot API link_preview_options). Text messages "
            "only: not with media, album or copyFrom."
        ),
    )
    show_caption_above_media: bool = Field(
        default=False,
        description=(
            "Show the caption (text) above the media instead of below: a photo, video or "
            "animation, or an album of photos and videos, with text."
        ),
    )
    message_effect_id: str | None = Field(
        default=None,
        pattern=_EFFECT_ID_PATTERN,
        description=(
            "Animated effect shown on the message (Bot API message_effect_id, for example "
            "5104841245755180586 for a fire). Telegram shows effects in private chats only: "
            "Herald leaves it out for groups and channels (chat ids below 0), which get "
            "the message without it."
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
        max_length=MAX_LANGUAGES,
        description=(
            "Per-language variants, keyed by lowercase language code (en, ru, pt-br). A "
            "recipient whose Telegram language is pt-br gets the pt-br variant, else the pt "
            "variant, else the default text and buttons. Needs text, media or album."
        ),
    )

    @property
    def kind(self) -> ContentKind:
        """Which Bot API call sends this content."""
        if self.copy_from is not None:
            return ContentKind.COPY
        if self.album is not None:
            return ContentKind.ALBUM
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
