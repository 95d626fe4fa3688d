"""The HTTP contract (docs/transactional.md); other tools rely on these paths.

- ``POST /v1/namespaces/{namespace}/bots/{bot}/messages``: take a message (202, or 200 with
  its final state when it has one, after ``?wait=`` or for a retry of a finished message).
- ``GET /v1/namespaces/{namespace}/bots/{bot}/messages/{id}``: a message's state.
- ``GET /v1/namespaces/{namespace}/broadcasts/{name}/deliveries``: a Broadcast's ledger,
  streamed (:mod:`herald.api.ledgers`).

Each handler authorises first (:mod:`herald.api.authorising`), so a caller without access
learns nothing of Bots or bodies, then hands over to :class:`~herald.api.service.Service`.
"""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Any

from fastapi import (
    APIRouter,
    Body,
    Depends,
    Header,
    HTTPException,
    Path,
    Query,
    Request,
    Response,
    status,
)
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from herald.api import ledgers
from herald.api.authorising import authorise, ledger_access, message_access
from herald.api.errors import IDEMPOTENCY_KEY
from herald.api.service import Service, is_final
from herald.api.settings import MAX_WAIT_SECONDS
from herald.core.deliveries import CSV, NDJSON, LedgerRow
from herald.core.messages import IDEMPOTENCY_KEY_MAX_LENGTH, MessageRequest, MessageView
from herald.kube.broadcasts import AsyncBroadcasts
from herald.kube.errors import KubeError, NotFound
from herald.kube.reviews import CachedReviews, Identity

__all__ = ["ledger_router", "router"]

logger = logging.getLogger(__name__)

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
        return await authorise(reviews, token, message_access(verb, namespace=namespace, bot=bot))

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


ledger_router = APIRouter(
    prefix="/v1/namespaces/{namespace}/broadcasts/{name}/deliveries", tags=["ledger"]
)


class _LedgerStream(StreamingResponse):
    # The default form, and the one the OpenAPI document shows the row model under.
    media_type = NDJSON


BroadcastNamespace = Annotated[str, Path(description="The Broadcast's namespace.")]
BroadcastName = Annotated[str, Path(description="The Broadcast's name.")]


@ledger_router.get(
    "",
    summary="A Broadcast's ledger: every recipient's state",
    response_class=_LedgerStream,
    responses={
        200: {
            "model": LedgerRow,
            "description": "The rows in chat id order, streamed: JSON lines (one LedgerRow "
            "a line) or, with Accept: text/csv, CSV with a header line. With limit, a "
            'Link header with rel="next" gives the next page when more rows follow.',
            "content": {
                CSV: {"schema": {"type": "string"}},
            },
            "headers": {
                "Link": {
                    "description": 'The next page, as <URL>; rel="next" (RFC 8288); absent '
                    "on the last page and without limit.",
                    "schema": {"type": "string"},
                }
            },
        },
        422: _error("An unknown state, or an after cursor this API did not give."),
        401: _REFUSALS[401],
        403: _error("The token's user may not get broadcasts/deliveries of the Broadcast."),
        404: _error("No such Broadcast in the namespace."),
        503: _REFUSALS[503],
    },
)
async def get_ledger(
    *,
    request: Request,
    namespace: BroadcastNamespace,
    name: BroadcastName,
    credentials: Credentials,
    state: Annotated[
        list[str] | None,
        Query(
            description="Only rows in these states: repeat it, or separate them with commas "
            "(state=failed,uncertain)."
        ),
    ] = None,
    after: Annotated[
        str | None,
        Query(description="The cursor of the previous page's Link header (opaque)."),
    ] = None,
    limit: Annotated[
        int | None,
        Query(
            ge=1,
            le=ledgers.MAX_LIMIT,
            description=f"At most this many rows (up to {ledgers.MAX_LIMIT}), with a Link "
            "header to the next page; without it, the whole ledger is streamed.",
        ),
    ] = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> StreamingResponse:
    reviews: CachedReviews = request.app.state.reviews
    token = credentials.credentials if credentials is not None else None
    await authorise(reviews, token, ledger_access(namespace=namespace, broadcast=name))
    states = ledgers.parse_states(state)
    uid = await _broadcast_uid(request, namespace, name)
    after_chat = ledgers.parse_cursor(after, uid)
    as_csv = ledgers.wants_csv(accept)
    pool = _service(request).pool
    chosen = [s.value for s in states] if states is not None else None
    media_type = f"{CSV}; charset=utf-8" if as_csv else NDJSON
    if limit is None:
        body = ledgers.stream(pool, uid, after=after_chat, states=chosen, as_csv=as_csv)
        return StreamingResponse(body, media_type=media_type)
    page = await ledgers.first_page(pool, uid, after=after_chat, states=chosen, limit=limit)
    headers = {}
    if page.next is not None:
        target = request.url.include_query_params(after=page.next)
        headers["Link"] = f'<{target.path}?{target.query}>; rel="next"'
    chunk = ledgers.encode(page.rows, as_csv=as_csv, header=as_csv)
    return StreamingResponse(iter([chunk]), media_type=media_type, headers=headers)


async def _broadcast_uid(request: Request, namespace: str, name: str) -> uuid.UUID:
    """The uid of the Broadcast of that name now (the ledger is kept by uid): 404 when there
    is none, 503 when the API server cannot say."""
    broadcasts: AsyncBroadcasts = request.app.state.broadcasts
    try:
        body = await broadcasts.get(namespace, name)
    except NotFound as exc:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f'no Broadcast "{name}" in namespace "{namespace}" (a deleted Broadcast\'s ledger '
            "is kept in Postgres for audit, and read there)",
        ) from exc
    except KubeError as exc:
        logger.error("cannot read Broadcast %s/%s: %s", namespace, name, exc)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"cannot read the Broadcast from the Kubernetes API server now: {exc}",
            headers={"Retry-After": "1"},
        ) from exc
    return uuid.UUID(body["metadata"]["uid"])
