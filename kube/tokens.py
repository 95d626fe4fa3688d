"""What a bot token Secret's data holds under one key, as a typed result. Pure.

Kubernetes serves a Secret's data base64-encoded; a bot token is ``<digits>:<secret>``, and
the digits are the bot's id (:func:`herald.core.subjects.bot_id_of`).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import SecretStr

from herald.core import subjects

__all__ = ["Found", "KeyNotFound", "Malformed", "SecretNotFound", "TokenRead", "token_in"]


@dataclass(frozen=True, slots=True)
class SecretNotFound:
    """No Secret of that name in the namespace."""


@dataclass(frozen=True, slots=True)
class KeyNotFound:
    """The Secret exists but has no such key."""


@dataclass(frozen=True, slots=True)
class Malformed:
    """The value is not ``<digits>:<secret>`` (or not base64, or not UTF-8)."""


@dataclass(frozen=True, slots=True)
class Found:
    token: SecretStr
    bot_id: str


TokenRead = SecretNotFound | KeyNotFound | Malformed | Found


def token_in(data: Mapping[str, str] | None, key: str) -> TokenRead:
    """The token under ``key`` of a Secret's (base64) data; None data: no such Secret."""
    if data is None:
        return SecretNotFound()
    raw = data.get(key)
    if raw is None:
        return KeyNotFound()
    try:
        token = base64.b64decode(raw).decode().strip()
        bot_id = subjects.bot_id_of(token)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return Malformed()
    return Found(SecretStr(token), bot_id)
