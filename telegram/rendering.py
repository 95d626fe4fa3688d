"""From a broadcast's content and one recipient to one Bot API call: which method, which
parameters. Pure: the adapter (:mod:`herald.telegram.client`) turns the result into an aiogram
method object.

Placeholders ``{first_name}``, ``{last_name}``, ``{username}`` and ``{full_name}`` in the
text (or caption) are replaced by the recipient's values, escaped for the parse mode so a
name like ``<Bob>`` or ``a_b`` can never break the markup. Other ``{...}`` are left alone:
they may be meant literally, and Telegram judges the markup as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from herald.core.contents import Button, Content, ContentKind, MediaType, ParseMode
from herald.core.envelopes import Recipient

__all__ = ["DEFAULT_VARIANT", "Rendered", "escape", "render", "substitute"]

DEFAULT_VARIANT = ""

_PLACEHOLDER = re.compile(r"\{(first_name|last_name|username|full_name)\}")
# Every character MarkdownV2 reserves; the backslash first, so escapes are not doubled.
_MARKDOWN_V2_SPECIAL = re.compile(r"([\\_*\[\]()~`>#+\-=|{}.!])")
_MEDIA_METHODS = {
    MediaType.PHOTO: ("sendPhoto", "photo"),
    MediaType.VIDEO: ("sendVideo", "video"),
    MediaType.DOCUMENT: ("sendDocument", "document"),
    MediaType.ANIMATION: ("sendAnimation", "animation"),
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


def _keyboard(rows: tuple[tuple[Button, ...], ...]) -> dict[str, Any]:
    return {
        "inline_keyboard": [
            [{"text": button.text, "url": button.url} for button in row] for row in rows
        ]
    }


def render(content: Content, recipient: Recipient, *, allow_paid_broadcast: bool) -> Rendered:
    """The call that sends `content` to `recipient`."""
    params: dict[str, Any] = {"chat_id": recipient.chat_id}
    if content.disable_notification:
        params["disable_notification"] = True
    if content.protect_content:
        params["protect_content"] = True
    if allow_paid_broadcast:
        params["allow_paid_broadcast"] = True

    if content.kind is ContentKind.COPY:
        assert content.copy_from is not None  # implied by the kind
        params["from_chat_id"] = content.copy_from.chat_id
        params["message_id"] = content.copy_from.message_id
        if content.buttons:
            params["reply_markup"] = _keyboard(content.buttons)
        return Rendered("copyMessage", params)

    variant = content.variant_for(recipient.language_code)
    text = variant.text if variant is not None else content.text
    buttons = variant.buttons if variant is not None and variant.buttons else content.buttons
    variant_key = DEFAULT_VARIANT
    if variant is not None and content.localized:
        variant_key = next(code for code, v in content.localized.items() if v is variant)
    if buttons:
        params["reply_markup"] = _keyboard(buttons)
    if text is not None:
        text = substitute(text, recipient, content.parse_mode)
    if content.parse_mode is not ParseMode.NONE and text is not None:
        params["parse_mode"] = str(content.parse_mode)

    if content.kind is ContentKind.MEDIA:
        assert content.media is not None
        method, field = _MEDIA_METHODS[content.media.type]
        params[field] = (
            content.media.url if content.media.url is not None else content.media.file_id
        )
        if text is not None:
            params["caption"] = text
        return Rendered(method, params, variant_key)

    assert text is not None  # a text broadcast has text
    params["text"] = text
    return Rendered("sendMessage", params, variant_key)
