"""The parts of a send request the Bot API reads as JSON objects (``reply_markup``,
``link_preview_options``, an album's ``media``) and ``message_effect_id``, checked as Telegram's
Bot API server checks them and refused in its words (its ``Client.cpp`` and TDLib's
``MessagesManager``), so a client's mistake fails here as it would fail against Telegram.

Where the emulator is stricter than Telegram it says so (docs/emulator.md lists every check):
a button with both ``url`` and ``callback_data`` (Telegram takes the url and drops the data),
an album of one item (Telegram sends it as a lone message; the Bot API documents 2 to 10), a
``message_effect_id`` that is no number (Telegram reads it as 0, no effect).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from herald.emulator.errors import ApiError, bad_request

__all__ = [
    "ALBUM_MAX_ITEMS",
    "CALLBACK_DATA_MAX_BYTES",
    "album_items",
    "link_preview_options",
    "message_effect",
    "reply_markup",
]

CALLBACK_DATA_MAX_BYTES = 64
ALBUM_MAX_ITEMS = 10
_ALBUM_KINDS = frozenset({"photo", "video", "document", "audio"})
_VISUAL = frozenset({"photo", "video"})
_URL_SCHEMES = frozenset({"http", "https", "tg"})
_LINK_PREVIEW_FLAGS = ("is_disabled", "prefer_small_media", "prefer_large_media", "show_above_text")


def _button_error(reason: str) -> ApiError:
    return bad_request(f"can't parse inline keyboard button: {reason}")


def _string_field(button: Mapping[str, Any], key: str) -> str | None:
    value = button.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _button_error(f'Field "{key}" must be of type String')
    return value


def _check_url(url: str) -> None:
    # TDLib's LinkManager::check_link: a URL without a scheme is an http one, other schemes
    # than these are refused, and an http(s) host needs a dot (no localhost, no bare names).
    parts = urlsplit(url if "://" in url or url.startswith("tg:") else f"http://{url}")
    if parts.scheme.lower() not in _URL_SCHEMES:
        raise bad_request(
            f"inline keyboard button URL '{url}' is invalid: Unsupported URL protocol"
        )
    if parts.scheme.lower() != "tg" and "." not in (parts.hostname or ""):
        raise bad_request(f"inline keyboard button URL '{url}' is invalid: Wrong HTTP URL")


def _button(button: Any) -> dict[str, Any]:
    if not isinstance(button, Mapping):
        raise _button_error("InlineKeyboardButton must be an Object")
    if "text" not in button:
        raise _button_error('Can\'t find field "text"')
    _string_field(button, "text")
    url = _string_field(button, "url")
    data = _string_field(button, "callback_data")
    if url and data:
        # Telegram takes the url and silently drops the data; a client that sets both has
        # a bug the emulator shows.
        raise _button_error("a button takes one of url and callback_data, not both")
    if url:
        _check_url(url)
    elif data:
        if len(data.encode()) > CALLBACK_DATA_MAX_BYTES:
            raise bad_request("BUTTON_DATA_INVALID")
    else:
        raise _button_error("Text buttons are unallowed in the inline keyboard")
    return dict(button)


def reply_markup(value: Any) -> dict[str, Any] | None:
    """An inline keyboard as Telegram would show it; None without one. A form-encoded value
    that was no JSON arrives here as the string it was."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if not isinstance(value, Mapping):
        raise bad_request("object expected as reply markup")
    rows = value.get("inline_keyboard")
    if rows is None:
        return None  # a reply keyboard or its removal: not Herald's, not checked here
    if not isinstance(rows, list):
        raise bad_request('field "inline_keyboard" must be of type Array')
    checked = []
    for row in rows:
        if not isinstance(row, list):
            raise bad_request(
                'field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays'
            )
        checked.append([_button(button) for button in row])
    return {"inline_keyboard": checked} if any(checked) else None


def link_preview_options(value: Any) -> dict[str, Any] | None:
    """The link preview options a sendMessage asked for; None without any."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        raise bad_request("can't parse link preview options JSON object")
    if not isinstance(value, Mapping):
        raise bad_request("object expected as link preview options")
    for flag in _LINK_PREVIEW_FLAGS:
        if flag in value and not isinstance(value[flag], bool):
            raise bad_request(f'field "{flag}" must be of type Boolean')
    if "url" in value and not isinstance(value["url"], str):
        raise bad_request('field "url" must be of type String')
    return {key: value[key] for key in (*_LINK_PREVIEW_FLAGS, "url") if value.get(key)}


def message_effect(params: Mapping[str, Any], chat_type: str) -> str | None:
    """The message effect a send asked for; refused outside private chats, as TDLib does."""
    effect = params.get("message_effect_id")
    if effect in (None, "", 0):
        return None
    if chat_type != "private":
        raise bad_request("can't use message effects in the chat")
    text = str(effect)
    if not text.isdigit():
        raise bad_request("EFFECT_ID_INVALID")
    return text


def album_items(media: Any) -> list[tuple[str, Mapping[str, Any]]]:
    """The items of a sendMediaGroup, each with its kind, checked as an album."""
    if media is None or media == "":
        raise bad_request('parameter "media" is required')
    if isinstance(media, str):
        raise bad_request("can't parse media JSON object")
    if not isinstance(media, list):
        raise bad_request("expected an Array of InputMedia")
    if not media:
        raise bad_request("there are no messages to send")
    if len(media) > ALBUM_MAX_ITEMS:
        raise bad_request("too many messages to send as an album")
    if len(media) == 1:
        raise bad_request("wrong number of messages in the album")
    items: list[tuple[str, Mapping[str, Any]]] = []
    for item in media:
        if not isinstance(item, Mapping):
            raise bad_request("can't parse InputMedia: expected an Object")
        kind = item.get("type")
        if kind is None:
            raise bad_request("can't parse InputMedia: Can't find field \"type\"")
        if kind == "animation":
            raise bad_request(
                "can't parse InputMedia: type \"animation\" can't be used in sendMediaGroup"
            )
        if kind not in _ALBUM_KINDS:
            raise bad_request(f'can\'t parse InputMedia: type "{kind}" is unsupported')
        if not item.get("media"):
            raise bad_request("can't parse InputMedia: media not found")
        items.append((str(kind), item))
    kinds = {kind for kind, _ in items}
    for lone in ("document", "audio"):
        if lone in kinds and kinds != {lone}:
            raise bad_request(f"{lone} can't be mixed with other media types")
    placements = {
        bool(item.get("show_caption_above_media")) for kind, item in items if kind in _VISUAL
    }
    if len(placements) > 1:
        raise bad_request("parameter show_caption_above_media must be the same for all messages")
    return items
