"""Who sent a request and whether they may: the API server's TokenReview and
SubjectAccessReview, so a service account token and an ordinary Role are all an application
needs, and Herald keeps no credentials of its own.

:class:`Reviews` makes the two calls (blocking, each bounded by ``timeout``);
:class:`CachedReviews` runs them in a worker thread and keeps each answer, accepted or
refused, for ``ttl`` seconds, keyed on a SHA-256 of the token (never the token itself), so a
burst of requests with one token costs one review: concurrent callers of the same key wait
for the same call. A call that fails (no answer, or the API server refused Herald the
review itself) is not kept: it is a :class:`~herald.kube.errors.KubeError`, and the next
request asks again.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from kubernetes import client

from herald.kube.errors import translated

__all__ = ["Access", "CachedReviews", "Decision", "Identity", "Reviews", "token_hash"]


@dataclass(frozen=True)
class Identity:
    """A user the API server authenticated, as a SubjectAccessReview names it again."""

    username: str
    uid: str | None = None
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Access:
    """What a request asks to do: ``verb`` on one object of a resource (or of one of its
    subresources, such as ``deliveries`` of ``broadcasts``), in a namespace."""

    verb: str
    group: str
    resource: str
    namespace: str
    name: str
    subresource: str = ""

    @property
    def resources(self) -> str:
        """The resource as a Role's ``resources`` names it: ``broadcasts/deliveries``."""
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource

    def __str__(self) -> str:
        """As kubectl names the object: ``broadcasts/deliveries.herald.dev "x"``."""
        return f'{self.resources}.{self.group} "{self.name}"'


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str  # the authorizer's words, often empty when it says no


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Reviews:
    """The two reviews, each one call to the API server."""

    def __init__(self, api: client.ApiClient, *, timeout: float | None = None) -> None:
        self._authentication = client.AuthenticationV1Api(api)
        self._authorization = client.AuthorizationV1Api(api)
        self.timeout = timeout

    def authenticate(self, token: str) -> Identity | None:
        """Whose token this is; None when the API server does not accept it (unknown,
        expired, revoked, or for another audience)."""
        review = client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token))
        with translated():
            answer: Any = self._authentication.create_token_review(
                review, _request_timeout=self.timeout
            )
        status = answer.status
        if status is None or not status.authenticated or status.user is None:
            return None
        user = status.user
        return Identity(
            username=user.username or "",
            uid=user.uid,
            groups=tuple(user.groups or ()),
            extra={key: tuple(values) for key, values in (user.extra or {}).items()},
        )

    def authorize(self, identity: Identity, access: Access) -> Decision:
        review = client.V1SubjectAccessReview(
            spec=client.V1SubjectAccessReviewSpec(
                user=identity.username,
                uid=identity.uid,
                groups=list(identity.groups),
                extra={key: list(values) for key, values in identity.extra.items()},
                resource_attributes=client.V1ResourceAttributes(
                    verb=access.verb,
                    group=access.group,
                    resource=access.resource,
                    subresource=access.subresource or None,
                    namespace=access.namespace,
                    name=access.name,
                ),
            )
        )
        with translated():
            answer: Any = self._authorization.create_subject_access_review(
                review, _request_timeout=self.timeout
            )
        status = answer.status
        allowed = bool(status is not None and status.allowed and not status.denied)
        return Decision(allowed=allowed, reason=(status.reason if status is not None else "") or "")


_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")


class _Kept(Generic[_K, _V]):
    """Answers kept for ``ttl`` seconds after they were asked for, at most ``size`` of them;
    callers of a key being asked for share the one call."""

    def __init__(self, *, ttl: float, size: int, clock: Callable[[], float]) -> None:
        self._ttl = ttl
        self._size = size
        self._clock = clock
        self._entries: dict[_K, tuple[float, asyncio.Future[_V]]] = {}

    async def get(self, key: _K, ask: Callable[[], Awaitable[_V]]) -> _V:
        now = self._clock()
        kept = self._entries.get(key)
        if kept is None or kept[0] <= now:
            # A task of its own, so a caller that gives up does not cancel the others' call.
            call = asyncio.ensure_future(ask())
            call.add_done_callback(lambda done: self._forget_failed(key, done))
            if self._ttl > 0:
                self._make_room(now)
                self._entries[key] = (now + self._ttl, call)
            kept = (now, call)
        return await asyncio.shield(kept[1])

    def _forget_failed(self, key: _K, done: asyncio.Future[_V]) -> None:
        # Reading the exception also keeps a failure nobody waited for out of the log.
        if done.cancelled() or done.exception() is not None:
            kept = self._entries.get(key)
            if kept is not None and kept[1] is done:
                del self._entries[key]

    def _make_room(self, now: float) -> None:
        if len(self._entries) < self._size:
            return
        for key in [key for key, (expires, _) in self._entries.items() if expires <= now]:
            del self._entries[key]
        while len(self._entries) >= self._size:
            # The oldest entry first: dicts keep insertion order.
            del self._entries[next(iter(self._entries))]


class CachedReviews:
    """:class:`Reviews` for an event loop, each answer kept ``ttl`` seconds (0: none kept)."""

    def __init__(
        self,
        reviews: Reviews,
        *,
        ttl: float,
        size: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.blocking = reviews
        self._identities: _Kept[str, Identity | None] = _Kept(ttl=ttl, size=size, clock=clock)
        self._decisions: _Kept[tuple[str, Access], Decision] = _Kept(
            ttl=ttl, size=size, clock=clock
        )

    async def authenticate(self, token: str) -> Identity | None:
        return await self._identities.get(
            token_hash(token), lambda: asyncio.to_thread(self.blocking.authenticate, token)
        )

    async def authorize(self, token: str, identity: Identity, access: Access) -> Decision:
        """Whether the holder of ``token`` (authenticated as ``identity``) may ``access``."""
        return await self._decisions.get(
            (token_hash(token), access),
            lambda: asyncio.to_thread(self.blocking.authorize, identity, access),
        )
