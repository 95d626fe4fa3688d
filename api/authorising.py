"""Who may send and read messages: the Kubernetes way, so a team grants its application
access with an ordinary Role and nothing else.

The bearer token is checked with TokenReview (401 when the API server does not accept it),
then the request with SubjectAccessReview: verb ``create`` (POST) or ``get`` (GET) on
resource ``messages`` of API group ``herald.dev``, resourceName the Bot's name, in the Bot's
namespace; for a Broadcast's ledger, verb ``get`` on ``broadcasts/deliveries`` (the
subresource ``deliveries`` of ``broadcasts``), resourceName the Broadcast's name (403 when
not allowed). Both answers are kept briefly (:mod:`herald.kube.reviews`).
When the API server cannot be asked, the answer is 503: nothing is let through unchecked.
"""

from __future__ import annotations

import logging

from fastapi import HTTPException, status

from herald.core.broadcasts import GROUP
from herald.core.deliveries import LEDGER_RESOURCE, LEDGER_SUBRESOURCE
from herald.core.messages import RESOURCE
from herald.kube.errors import KubeError
from herald.kube.reviews import Access, CachedReviews, Identity

__all__ = ["authorise", "bearer_token", "ledger_access", "message_access"]

logger = logging.getLogger(__name__)

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def bearer_token(token: str | None) -> str:
    """The token of the ``Authorization: Bearer <token>`` header; 401 without one."""
    if not token:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "an Authorization: Bearer <token> header is required, with a Kubernetes service "
            "account token (kubectl create token, or a projected volume)",
            headers=_CHALLENGE,
        )
    return token


def message_access(verb: str, *, namespace: str, bot: str) -> Access:
    """``verb`` on the messages of a Bot."""
    return Access(verb=verb, group=GROUP, resource=RESOURCE, namespace=namespace, name=bot)


def ledger_access(*, namespace: str, broadcast: str) -> Access:
    """Reading a Broadcast's ledger."""
    return Access(
        verb="get",
        group=GROUP,
        resource=LEDGER_RESOURCE,
        subresource=LEDGER_SUBRESOURCE,
        namespace=namespace,
        name=broadcast,
    )


async def authorise(reviews: CachedReviews, bearer: str | None, access: Access) -> Identity:
    """The caller, when the API server says it may do ``access``; ``bearer`` is the token of
    the request's Authorization header, None without one."""
    token = bearer_token(bearer)
    try:
        identity = await reviews.authenticate(token)
        if identity is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "the Kubernetes API server does not accept this token (unknown, expired, "
                "or its service account was deleted)",
                headers=_CHALLENGE,
            )
        decision = await reviews.authorize(token, identity, access)
    except KubeError as exc:
        logger.error("cannot review a request with the Kubernetes API server: %s", exc)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"cannot check the token with the Kubernetes API server now: {exc}",
            headers={"Retry-After": "1"},
        ) from exc
    if not decision.allowed:
        why = f" ({decision.reason})" if decision.reason else ""
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"{identity.username} may not {access.verb} {access} in namespace "
            f'"{access.namespace}"{why}: a Role granting verb {access.verb} on '
            f"{access.resources} (apiGroup {access.group}, resourceNames [{access.name}]), "
            "bound to it in that namespace, lets it",
        )
    return identity
