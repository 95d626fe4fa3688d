"""From a broadcast's content and one recipient to one Bot API call: which method, which
parameters. Pure: the adapter (:mod:`herald.telegram.client`) turns the result into an aiogram
method object.

Placeholders ``{first_name}``, ``{last_name}``, ``{username}`` and ``{full_name}`` in the
text (or caption) are replaced by the recipient's values, escaped for the parse mode so a
name like ``<Bob>`` or ``a_b`` can never break the markup. Other ``{...}`` are left alone:
they may be meant literally, and Telegram judges the markup as written.

An album is one sendMediaGroup call whose ``media`` is a list of InputMedia dicts, the caption
and parse mode on the first; Telegram answers it with one message per item, and the ledger
keeps the first one's id. ``message_effect_id`` goes to private chats only, which Telegram
numbers above 0 (a user's id); groups and channels, numbered below 0, would refuse the whole
message ("can't use message effects in the chat"), so they get it without the effect.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from dataclasses import dataclass
from typing import Any

from herald.core.contents import Button, Content, ContentKind, LinkPreview, ParseMode
from herald.core.corrections import Correction, corrected
from herald.core.envelopes import Recipient
from herald.core.media import AlbumItem, MediaType

__all__ = [
    "CALLBACK_DATA_MAX_BYTES",
    "DEFAULT_VARIANT",
    "Press",
    "Rendered",
    "callback_data",
    "escape",
    "is_private",
    "parse_callback_data",
    "render",
    "render_delete",
    "render_delete_all",
    "render_edit",
    "substitute",
]

DEFAULT_VARIANT = ""
CALLBACK_DATA_MAX_BYTES = 64  # Telegram's limit for an inline button's callback_data
# callback_data is "h1:<broadcast uid>:<callback id>", the uid (a Kubernetes UUID) in 22
# characters of unpadded base64url: 3 + 22 + 1 + 32 = 58 bytes at the longest callback id.
# The version prefix lets a later form coexist with buttons already sent in this one.
_CALLBACK_PREFIX = "h1:"

_PLACEHOLDER = re.compile(r"\{(first_name|last_name|username|full_name)\}")
# Every character MarkdownV2 reserves; the backslash first, so escapes are not doubled.
_MARKDOWN_V2_SPECIAL = re.compile(r"([\\_*\[\]()~`>#+\-=|{}.!])")
_MEDIA_METHODS = {
    MediaType.PHOTO: ("sendPhoto", "photo"),
    MediaType.VIDEO: ("sendVideo", "video"),
    MediaType.DOCUMENT: ("sendDocument", "document"),
    MediaType.ANIMATION: ("sendAnimation", "animation"),
    MediaType.AUDIO: ("sendAudio", "audio"),
    MediaType.VOICE: ("sendVoice", "voice"),
}


@dataclass(frozen=True, slots=True)
class Rendered:
    """One Bot API call. `variant` names the localized variant used ("" for the default);
    the circuit breaker judges each variant's markup separately."""

    method: str
    params: dict[str, Any]
    variant: str = DEFAULT_VARIANT


def escape(value: str, parse_mode: ParseMode) -> str:
    """`value` as literal text under `parse_mode`."""
    if parse_mode is ParseMode.HTML:
        return (
            value.replace("&", "&amp;")
            .replace("<", "&lt;")
            .replace(">", "&gt;")
            .replace('"', "&quot;")
            # Telegram names no entity for it, but takes numeric ones: a name like O'Brien
            # then cannot end a single-quoted attribute such as <a href='...'>.
            .replace("'", "&#39;")
        )
    if parse_mode is ParseMode.MARKDOWN_V2:
        return _MARKDOWN_V2_SPECIAL.sub(r"\\\1", value)
    return value


def substitute(text: str, recipient: Recipient, parse_mode: ParseMode) -> str:
    """`text` with the recipient's placeholders filled in and escaped."""
    full_name = " ".join(part for part in (recipient.first_name, recipient.last_name) if part)
    values = {
        "first_name": recipient.first_name or "",
        "last_name": recipient.last_name or "",
        "username": recipient.username or "",
        "full_name": full_name,
    }
    return _PLACEHOLDER.sub(lambda match: escape(values[match.group(1)], parse_mode), text)


@dataclass(frozen=True, slots=True)
class Press:
    """What a callback button's data says: which broadcast, which button."""

    broadcast_uid: str
    callback: str


def callback_data(broadcast_uid: str, callback: str) -> str:
    """The callback_data of button `callback` in the broadcast with uid `broadcast_uid`."""
    compact = base64.urlsafe_b64encode(uuid.UUID(broadcast_uid).bytes).rstrip(b"=").decode()
    data = f"{_CALLBACK_PREFIX}{compact}:{callback}"
    if len(data.encode()) > CALLBACK_DATA_MAX_BYTES:
        raise ValueError(f"callback id {callback!r} does not fit Telegram's callback_data")
    return data


def parse_callback_data(data: str) -> Press | None:
    """The press `data` stands for; ``None`` for data Herald did not write."""
    if not data.startswith(_CALLBACK_PREFIX):
        return None
    compact, sep, callback = data[len(_CALLBACK_PREFIX) :].partition(":")
    if not sep or not callback:
        return None
    try:
        raw = base64.urlsafe_b64decode(compact + "==")
        return Press(str(uuid.UUID(bytes=raw)), callback)
    except (binascii.Error, ValueError):
        return None


def _button(button: Button, broadcast_uid: str) -> dict[str, str]:
    if button.callback is not None:
        return {"text": button.text, "callback_data": callback_data(broadcast_uid, button.callback)}
    assert button.url is not None  # a button has exactly one of url and callback
    return {"text": button.text, "url": button.url}


def _keyboard(rows: tuple[tuple[Button, ...], ...], broadcast_uid: str) -> dict[str, Any]:
    return {"inline_keyboard": [[_button(b, broadcast_uid) for b in row] for row in rows]}


def _link_preview(preview: LinkPreview) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if preview.disabled:
        options["is_disabled"] = True
    if preview.url is not None:
        options["url"] = preview.url
    if preview.prefer_small_media:
        options["prefer_small_media"] = True
    if preview.prefer_large_media:
        options["prefer_large_media"] = True
    if preview.show_above_text:
        options["show_above_text"] = True
    return options


def _album(
    album: tuple[AlbumItem, ...], caption: str | None, parse_mode: str | None, *, above: bool
) -> list[dict[str, Any]]:
    """sendMediaGroup's media: the caption on the first item, which Telegram shows as the
    album's."""
    media: list[dict[str, Any]] = []
    for item in album:
        entry: dict[str, Any] = {
            "type": str(item.type),
            "media": item.url if item.url is not None else item.file_id,
        }
        if caption is not None and not media:
            entry["caption"] = caption
            if parse_mode is not None:
                entry["parse_mode"] = parse_mode
        if above:
            # Telegram wants the same placement on every photo and video of an album.
            entry["show_caption_above_media"] = True
        media.append(entry)
    return media


def is_private(chat_id: int) -> bool:
    """Whether `chat_id` is a private chat: Telegram gives users positive ids, groups and
    channels negative ones."""
    return chat_id > 0


def render(
    content: Content, recipient: Recipient, *, broadcast_uid: str, allow_paid_broadcast: bool
) -> Rendered:
    """The call that sends `content` of broadcast `broadcast_uid` to `recipient`."""
    params: dict[str, Any] = {"chat_id": recipient.chat_id}
    if content.disable_notification:
        params["disable_notification"] = True
    if content.protect_content:
        params["protect_content"] = True
    if allow_paid_broadcast:
        params["allow_paid_broadcast"] = True
    if content.message_effect_id is not None and is_private(recipient.chat_id):
        params["message_effect_id"] = content.message_effect_id

    if content.kind is ContentKind.COPY:
        assert content.copy_from is not None  # implied by the kind
        params["from_chat_id"] = content.copy_from.chat_id
        params["message_id"] = content.copy_from.message_id
        if content.buttons:
            params["reply_markup"] = _keyboard(content.buttons, broadcast_uid)
        return Rendered("copyMessage", params)

    variant = content.variant_for(recipient.language_code)
    text = variant.text if variant is not None else content.text
    buttons = variant.buttons if variant is not None and variant.buttons else content.buttons
    variant_key = DEFAULT_VARIANT
    if variant is not None and content.localized:
        variant_key = next(code for code, v in content.localized.items() if v is variant)
    if text is not None:
        text = substitute(text, recipient, content.parse_mode)
    parse_mode = str(content.parse_mode) if content.parse_mode is not ParseMode.NONE else None
    above = content.show_caption_above_media and text is not None

    if content.kind is ContentKind.ALBUM:
        assert content.album is not None
        params["media"] = _album(content.album, text, parse_mode, above=above)
        return Rendered("sendMediaGroup", params, variant_key)

    if buttons:
        params["reply_markup"] = _keyboard(buttons, broadcast_uid)
    if parse_mode is not None and text is not None:
        params["parse_mode"] = parse_mode

    if content.kind is ContentKind.MEDIA:
        assert content.media is not None
        method, field = _MEDIA_METHODS[content.media.type]
        params[field] = (
            content.media.url if content.media.url is not None else content.media.file_id
        )
        if text is not None:
            params["caption"] = text
        if above:
            params["show_caption_above_media"] = True
        return Rendered(method, params, variant_key)

    assert text is not None  # a text broadcast has text
    params["text"] = text
    if content.link_preview is not None:
        params["link_preview_options"] = _link_preview(content.link_preview)
    return Rendered("sendMessage", params, variant_key)


# What an edit carries over from the send it corrects: the words, their parse mode, and the
# buttons (an edit without reply_markup would remove the inline keyboard).
_EDIT_TEXT_KEEPS = ("text", "parse_mode", "reply_markup", "link_preview_options")
_EDIT_CAPTION_KEEPS = ("caption", "parse_mode", "reply_markup", "show_caption_above_media")


def render_edit(
    content: Content,
    correction: Correction,
    recipient: Recipient,
    *,
    broadcast_uid: str,
    message_id: int,
) -> Rendered:
    """The editMessageText or editMessageCaption that makes the message `message_id` sent to
    `recipient` show `correction`, its buttons kept. An album's caption is its first
    message's, which `message_id` names."""
    fixed = corrected(content, correction)
    params: dict[str, Any] = {"chat_id": recipient.chat_id, "message_id": message_id}
    parse_mode = str(correction.parse_mode) if correction.parse_mode is not ParseMode.NONE else None
    words = substitute(correction.words, recipient, correction.parse_mode)
    if fixed.kind is ContentKind.COPY:
        # A copy's kind is the source's: the correction names which edit it takes.
        if content.buttons:
            params["reply_markup"] = _keyboard(content.buttons, broadcast_uid)
        key = "text" if correction.text is not None else "caption"
        params[key] = words
        if parse_mode is not None:
            params["parse_mode"] = parse_mode
        return Rendered("editMessageText" if key == "text" else "editMessageCaption", params)
    sent = render(fixed, recipient, broadcast_uid=broadcast_uid, allow_paid_broadcast=False)
    if sent.method == "sendMediaGroup":
        first = sent.params["media"][0]
        params["caption"] = first.get("caption", words)
        if "parse_mode" in first:
            params["parse_mode"] = first["parse_mode"]
        if first.get("show_caption_above_media"):
            params["show_caption_above_media"] = True
        return Rendered("editMessageCaption", params, sent.variant)
    method = "editMessageText" if sent.method == "sendMessage" else "editMessageCaption"
    keeps = _EDIT_TEXT_KEEPS if method == "editMessageText" else _EDIT_CAPTION_KEEPS
    params.update({key: sent.params[key] for key in keeps if key in sent.params})
    return Rendered(method, params, sent.variant)


def render_delete(chat_id: int, message_id: int) -> Rendered:
    """The deleteMessage of one message a broadcast sent."""
    return Rendered("deleteMessage", {"chat_id": chat_id, "message_id": message_id})


def render_delete_all(chat_id: int, message_ids: tuple[int, ...]) -> Rendered:
    """The deleteMessages of an album's messages: one request for them all."""
    return Rendered("deleteMessages", {"chat_id": chat_id, "message_ids": list(message_ids)})
