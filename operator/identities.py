"""Which bot a Broadcast sends with, and whether Telegram says the token is that bot's.

``spec.botRef`` names a Bot of the Broadcast's namespace (found in kopf's index of Bots, so a
resync reads nothing from the API server for it); when no Bot has the name, the older form
applies: a Secret holding the token. Either way the token is verified with getMe before any
record carries it, and the bot id is getMe's. Verdicts are kept per token digest: a rotated
token is a new digest, so it is asked about at once; a kept one is asked again after ``ttl``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr, ValidationError

from herald.core.bots import BotSpec, SecretKeyRef
from herald.core.broadcasts import BotRef
from herald.core.envelopes import SendLimits
from herald.operator.planning import TokenState
from herald.telegram import identities
from herald.telegram.identities import Identity, Refused, Unreachable, Verdict

__all__ = ["BotIndex", "Resolved", "Target", "Verifier", "target_of"]

# A refusal is asked again sooner than a verification: a token Telegram refused because it
# was revoked stays refused, but one refused in a Telegram hiccup should not wait long.
_REFUSED_TTL = 30.0


class BotIndex:
    """The Bots of each namespace, as kopf's index keeps them: namespace -> (name, spec)."""

    def __init__(self, index: Mapping[str, Iterable[tuple[str, Mapping[str, Any]]]]) -> None:
        self._index = index

    def specs(self, namespace: str) -> Mapping[str, Mapping[str, Any]]:
        return dict(self._index.get(namespace, ()))


@dataclass(frozen=True, slots=True)
class Target:
    """Where a Broadcast's token is, and the limits of its Bot (None: the older form)."""

    secret: SecretKeyRef
    limits: SendLimits | None
    bot: str | None  # the Bot's name; None for a botRef naming a Secret


def target_of(ref: BotRef, bots: Mapping[str, Mapping[str, Any]]) -> Target:
    """Resolve ``botRef`` against the namespace's Bots (name -> spec)."""
    spec = bots.get(ref.name)
    if spec is not None:
        try:
            bot = BotSpec.model_validate(spec)
        except ValidationError:
            bot = None
        if bot is not None:
            return Target(
                secret=bot.token_secret_ref, limits=SendLimits.of(bot.limits), bot=ref.name
            )
    return Target(secret=SecretKeyRef(name=ref.name, key=ref.key), limits=None, bot=None)


@dataclass(frozen=True, slots=True)
class Resolved:
    """A token as the planner sees it: its state and, when verified, who it is."""

    state: TokenState
    token: SecretStr | None = None
    bot_id: str | None = None
    username: str | None = None
    detail: str = ""


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class _Kept:
    verdict: Verdict
    at: float


class Verifier:
    """getMe verdicts by token digest, shared by every Broadcast and Bot of one operator."""

    def __init__(
        self,
        *,
        api_url: str,
        ttl: float,
        clock: Callable[[], float],
        ask: Callable[[str], Awaitable[Verdict]] | None = None,
    ) -> None:
        self.ttl = ttl
        self._clock = clock
        self._ask = ask or (lambda token: identities.verify(token, api_url=api_url))
        self._kept: dict[str, _Kept] = {}

    async def verify(self, token: str) -> Verdict:
        key = digest(token)
        now = self._clock()
        kept = self._kept.get(key)
        if kept is not None:
            ttl = _REFUSED_TTL if isinstance(kept.verdict, Refused) else self.ttl
            if now - kept.at < ttl:
                return kept.verdict
        verdict = await self._ask(token)
        if isinstance(verdict, Unreachable):
            self._kept.pop(key, None)  # ask again on the next run
        else:
            self._kept[key] = _Kept(verdict, now)
        if len(self._kept) > 4096:  # tokens no Secret holds any more
            self._kept = {k: v for k, v in self._kept.items() if now - v.at < self.ttl}
        return verdict

    def forget(self, token: str) -> None:
        """Drop the verdict: Telegram refused the token on a send since."""
        self._kept.pop(digest(token), None)

    async def resolve(self, state: TokenState, token: SecretStr | None) -> Resolved:
        """A Secret read (state, token) taken through getMe."""
        if state is not TokenState.FOUND or token is None:
            return Resolved(state=state)
        match await self.verify(token.get_secret_value()):
            case Identity(bot_id=bot_id, username=username):
                return Resolved(
                    state=TokenState.FOUND, token=token, bot_id=str(bot_id), username=username
                )
            case Refused(message=message):
                return Resolved(state=TokenState.REFUSED, detail=message)
            case Unreachable(message=message):
                return Resolved(state=TokenState.UNVERIFIED, detail=message)
