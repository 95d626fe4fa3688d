"""Bot tokens sealed for the trip through NATS: AES-256-GCM under a key ring that only the
operator, the senders and the bot mount from a Secret.

A sealed token is ``<key id>.<base64 of nonce + ciphertext>``. The key id says which key of the
ring opens it, so keys rotate without a flag day: add the new key to every component's ring
(second place), roll them out, move it to the first place (the first key seals), roll out
again, and drop the old key once the operator has rewritten every record (docs/install.md).

The record's own identity (broadcast uid or bot key) is bound in as associated data, so a
sealed token copied from one record into another does not open.

Pure: no I/O; the ring is built from settings by :meth:`KeyRing.parse`.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["KeyRing", "SealError", "generate_key"]

_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_NONCE_BYTES = 12


class SealError(ValueError):
    """A key ring that cannot be read, or a sealed token that does not open."""


def generate_key(key_id: str = "k1") -> str:
    """A new ring entry, ``<id>:<base64 of 32 random bytes>``, for a Secret or a dev stack."""
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"


@dataclass(frozen=True)
class KeyRing:
    """AES-256 keys by id; the first one seals, every one opens."""

    keys: Mapping[str, bytes]
    primary: str

    @classmethod
    def parse(cls, text: str) -> KeyRing:
        """A ring from ``id:base64key`` entries separated by commas or newlines."""
        keys: dict[str, bytes] = {}
        primary = ""
        for raw in re.split(r"[,\n]", text):
            entry = raw.strip()
            if not entry or entry.startswith("#"):
                continue
            key_id, sep, encoded = entry.partition(":")
            if not sep or _KEY_ID.fullmatch(key_id) is None:
                raise SealError(
                    "a token key is written <id>:<base64 of 32 bytes>, with an id of letters, "
                    "digits, - or _ (for example k1:...); generate one with `herald token-key`"
                )
            try:
                key = base64.b64decode(encoded.strip(), validate=True)
            except binascii.Error as exc:
                raise SealError(f"token key {key_id!r} is not valid base64") from exc
            if len(key) != 32:
                raise SealError(f"token key {key_id!r} has {len(key)} bytes; AES-256 takes 32")
            if key_id in keys:
                raise SealError(f"token key {key_id!r} appears twice")
            keys[key_id] = key
            primary = primary or key_id
        if not keys:
            raise SealError("the token key ring is empty")
        return cls(keys=keys, primary=primary)

    def seal(self, token: str, *, bound_to: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = AESGCM(self.keys[self.primary]).encrypt(nonce, token.encode(), bound_to.encode())
        return f"{self.primary}.{base64.b64encode(nonce + sealed).decode()}"

    def open(self, sealed: str, *, bound_to: str) -> str:
        key_id, sep, body = sealed.partition(".")
        key = self.keys.get(key_id)
        if not sep or key is None:
            raise SealError(
                f"sealed with key {key_id!r}, which is not in this component's token key ring"
            )
        try:
            raw = base64.b64decode(body, validate=True)
            plain = AESGCM(key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], bound_to.encode())
        except (binascii.Error, InvalidTag, ValueError) as exc:
            raise SealError(f"a token sealed with key {key_id!r} does not open") from exc
        return plain.decode()
