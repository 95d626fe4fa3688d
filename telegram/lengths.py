"""Whether a rendered call is too long for Telegram, measured as Telegram measures it: the
plain text after the markup is parsed (:func:`herald.core.markups.visible_length`).

The CRD caps each text as written, but placeholders are filled per recipient: a
``{first_name}`` of a very long name can push one recipient's message past the limit while
everybody else's fits. Deciding that before the request spares a call Telegram would refuse,
and keeps the refusal that recipient's alone (reason ``TextTooLong``) instead of a content
error that could stop the broadcast. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from herald.core.contents import CAPTION_MAX_LENGTH, TEXT_MAX_LENGTH
from herald.core.markups import visible_length
from herald.telegram.rendering import Rendered

__all__ = ["too_long"]


def too_long(rendered: Rendered) -> bool:
    """Whether Telegram would answer `rendered` "message is too long" or "message caption is
    too long". Markup that does not parse counts as fitting: Telegram refuses it for that."""
    params = rendered.params
    parse_mode = params.get("parse_mode")
    if _over(params.get("text"), parse_mode, TEXT_MAX_LENGTH):
        return True
    if _over(params.get("caption"), parse_mode, CAPTION_MAX_LENGTH):
        return True
    # An album carries a caption, and its own parse mode, on its items.
    items = params.get("media")
    if isinstance(items, list):
        return any(
            _over(item.get("caption"), item.get("parse_mode"), CAPTION_MAX_LENGTH)
            for item in items
            if isinstance(item, Mapping)
        )
    return False


def _over(text: Any, parse_mode: Any, limit: int) -> bool:
    if not isinstance(text, str) or len(text) <= limit:
        return False  # the markup only ever shortens the text: no need to parse it
    length = visible_length(text, str(parse_mode) if parse_mode else None)
    return length is not None and length > limit
