"""Bot tokens from their Secrets: what a Secret's data says (read by :mod:`herald.kube.tokens`,
named as the planner names it), and a short-lived cache of it.

Many Broadcasts share one bot Secret, and each runs a resync every few seconds: reading the
Secret on every run made token reads the API server's busiest request (two hundred running
Broadcasts, a hundred reads a second). Each Secret is read at most once per ``ttl`` for all
the Broadcasts that name it; a Secret created, fixed or rotated is seen within ``ttl``.
Pure: time is an argument.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import SecretStr

from herald.core.bots import SecretKeyRef
from herald.kube import tokens
from herald.operator.planning import TokenState

__all__ = ["SecretCache", "token_of", "wording"]


def token_of(data: Mapping[str, str] | None, key: str) -> tuple[TokenState, SecretStr | None]:
    """The token under ``key`` of a Secret's (base64) data; None data: no such Secret."""
    match tokens.token_in(data, key):
        case tokens.Found(token=token):
            return TokenState.FOUND, token
        case tokens.SecretNotFound():
            return TokenState.SECRET_NOT_FOUND, None
        case tokens.KeyNotFound():
            return TokenState.KEY_NOT_FOUND, None
        case tokens.Malformed():
            return TokenState.MALFORMED, None


def wording(state: TokenState, ref: SecretKeyRef, *, bot: str | None) -> str:
    """What is wrong at ``ref``, for a condition message."""
    where = f"Secret {ref.name!r}" + (f" (tokenSecretRef of Bot {bot!r})" if bot else "")
    if state is TokenState.SECRET_NOT_FOUND:
        return f"{where} was not found"
    if state is TokenState.KEY_NOT_FOUND:
        return f"{where} has no key {ref.key!r}"
    return f"the value of key {ref.key!r} in {where} is not a bot token (<digits>:<secret>)"


@dataclass(frozen=True, slots=True)
class _Entry:
    data: Mapping[str, str] | None  # None: the Secret did not exist
    read_at: float


class SecretCache:
    """Secrets' data by (namespace, name), each kept for ``ttl`` seconds after its read."""

    def __init__(self, *, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._sweep_at = 64

    def get(
        self, namespace: str, name: str, *, now: float
    ) -> tuple[bool, Mapping[str, str] | None]:
        """(fresh, data): whether a read younger than ``ttl`` is kept, and what it found."""
        entry = self._entries.get((namespace, name))
        if entry is None or now - entry.read_at >= self.ttl:
            return False, None
        return True, entry.data

    def put(self, namespace: str, name: str, data: Mapping[str, str] | None, *, now: float) -> None:
        self._entries[(namespace, name)] = _Entry(data, now)
        if len(self._entries) >= self._sweep_at:  # Secrets no Broadcast names any more go
            self._entries = {k: e for k, e in self._entries.items() if now - e.read_at < self.ttl}
            self._sweep_at = max(64, 2 * len(self._entries))
