"""The HTTP contract (docs/transactional.md); other tools rely on these paths.

- ``POST /v1/namespaces/{namespace}/bots/{bot}/messages``: take a message (202, or 200 with
  its final state when it has one, after ``?wait=`` or for a retry of a finished message).
- ``GET /v1/namespaces/{namespace}/bots/{bot}/messages/{id}``: a message's state.

Each handler authorises first (:mod:`herald.api.authorising`), so a caller without access
learns nothing of Bots or bodies, then hands over to :class:`~herald.api.service.Service`.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from herald.api.authorising import authorise, message_access
from herald.api.errors import IDEMPOTENCY_KEY
from herald.api.service import Service, is_final
from herald.api.settings import MAX_WAIT_SECONDS
from herald.core.messages import IDEMPOTENCY_KEY_MAX_LENGTH, MessageRequest, MessageView
from herald.kube.reviews import CachedReviews, Identity

__all__ = ["router"]

router = APIRouter(prefix="/v1/namespaces/{namespace}/bots/{bot}/messages", tags=["messages"])


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"detail": {"description": "What is wrong, readably."}},
                }
            }
        },
    }


_REFUSALS: dict[int | str, dict[str, Any]] = {
    401: _error("No bearer token, or one the Kubernetes API server does not accept."),
    403: _error("The token's user may not do this (SubjectAccessReview)."),
    404: _error("No such Bot takes messages, or no such message."),
    503: _error("The Kubernetes API server cannot be asked now; try again."),
}

Namespace = Annotated[str, Path(description="The Bot's namespace.")]
BotName = Annotated[str, Path(description="The Bot's name.")]
# Shown in the OpenAPI document (and the Authorize button of /docs); a missing or other
# scheme is left to `authorise`, which says what is expected.
_BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="KubernetesToken",
    description="A Kubernetes service account token (kubectl create token, or a projected "
    "volume), checked with TokenReview and authorised with SubjectAccessReview.",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def _allowed(verb: str) -> Any:
    async def check(
        request: Request, namespace: Namespace, bot: BotName, credentials: Credentials
    ) -> Identity:
        reviews: CachedReviews = request.app.state.reviews
        token = credentials.credentials if credentials is not None else None
        return await authorise(
            reviews, token, message_access(verb, namespace=namespace, bot=bot)
        )

    return Depends(check)


@router.post(
    "",
    status_code=202,
    response_model=MessageView,
    summary="Send one message to one chat",
    responses={
        200: {"model": MessageView, "description": "The message reached its final state."},
        202: {"model": MessageView, "description": "Taken; it is being sent."},
        400: _error(f"The {IDEMPOTENCY_KEY} header is missing or too long."),
        413: _error("The body is over HERALD_API_MAX_BODY_BYTES."),
        422: _error(
            "The body is not a message (each problem with its field path), a callbackUrl "
            f"for a Bot without a callback secret, or the {IDEMPOTENCY_KEY} was used for "
            "another body."
        ),
        429: _error("The bot's queue is full; Retry-After says when to try again."),
        **_REFUSALS,
    },
)
async def post_message(
    *,
    request: Request,
    response: Response,
    namespace: Namespace,
    bot: BotName,
    _: Annotated[Identity, _allowed("create")],
    message: Annotated[MessageRequest, Body()],
    idempotency_key: Annotated[
        str,
        Header(
            alias=IDEMPOTENCY_KEY,
            min_length=1,
            max_length=IDEMPOTENCY_KEY_MAX_LENGTH,
            description="The client's own name for this message (a UUID, say): the same key "
            "with the same body is the same message, never sent twice; with another body it "
            "is refused (422). Kept for HERALD_API_IDEMPOTENCY_HOURS (24 by default).",
        ),
    ],
    wait: Annotated[
        float | None,
        Query(
            ge=0,
            le=MAX_WAIT_SECONDS,
            description="Seconds (at most 30) to wait for the final state: 200 with it when "
            "reached in time, else 202.",
        ),
    ] = None,
) -> MessageView:
    service = _service(request)
    row = await service.accept(namespace, bot, idempotency_key, message)
    if wait:
        row = await service.settle(row, wait=wait)
    response.status_code = 200 if is_final(row) else 202
    return row.view()


@router.get(
    "/{message_id}",
    response_model=MessageView,
    summary="A message's state",
    responses=_REFUSALS,
)
async def get_message(
    *,
    request: Request,
    namespace: Namespace,
    bot: BotName,
    message_id: Annotated[uuid.UUID, Path(description="The id the POST answered with.")],
    _: Annotated[Identity, _allowed("get")],
) -> MessageView:
    row = await _service(request).read(namespace, bot, message_id)
    return row.view()
