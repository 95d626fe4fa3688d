"""How herald-api says no: every error is JSON with a readable ``detail``.

A request that is malformed gets ``detail`` as a list of its problems, each with ``loc``
(where: ``["body", "content", "text"]``, ``["header", "Idempotency-Key"]``), ``msg`` and
``type``, as FastAPI writes validation errors: 400 when a header is at fault, 413 for a body
over the size limit, else 422. Every other refusal (401, 403, 404, 422 for a reused
Idempotency-Key, 429, 503) gets ``detail`` as one sentence.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from herald.core.messages import IDEMPOTENCY_KEY_MAX_LENGTH

__all__ = ["IDEMPOTENCY_KEY", "LimitBody", "install", "problem"]

IDEMPOTENCY_KEY = "Idempotency-Key"

_KEY_MESSAGES = {
    "missing": (
        f"the {IDEMPOTENCY_KEY} header is required: a key of the client's own (1 to "
        f"{IDEMPOTENCY_KEY_MAX_LENGTH} characters, a UUID for example) naming this message, "
        "so that a retry of the request is never sent twice"
    ),
    "string_too_long": (
        f"{IDEMPOTENCY_KEY} may have at most {IDEMPOTENCY_KEY_MAX_LENGTH} characters"
    ),
    "string_too_short": f"{IDEMPOTENCY_KEY} must not be empty",
}


def problem(loc: Sequence[str | int], msg: str, kind: str) -> dict[str, Any]:
    """One entry of a malformed request's ``detail``."""
    return {"loc": list(loc), "msg": msg, "type": kind}


def _readable(error: dict[str, Any]) -> dict[str, Any]:
    loc = tuple(error.get("loc", ()))
    kind = str(error.get("type", ""))
    msg = str(error.get("msg", ""))
    if loc == ("header", IDEMPOTENCY_KEY):
        msg = _KEY_MESSAGES.get(kind, msg)
    # The input is not echoed: it may be a whole 64 KiB body, and it is the client's own.
    return problem(loc, msg, kind)


async def _invalid(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [_readable(error) for error in exc.errors()]
    status = 400 if any(entry["loc"][:1] == ["header"] for entry in problems) else 422
    return JSONResponse({"detail": problems}, status_code=status)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _invalid)


class LimitBody:
    """ASGI middleware that refuses a request body over ``limit`` bytes with 413, before the
    app reads any of it (by its Content-Length) or as soon as it passes the limit."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send, int(declared))
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(send, None)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send, size: int | None) -> None:
        said = f"{size} bytes" if size is not None else f"over {self.limit} bytes"
        body = json.dumps(
            {
                "detail": [
                    problem(
                        ["body"],
                        f"the body is {said}, more than the {self.limit} bytes taken "
                        "(HERALD_API_MAX_BODY_BYTES)",
                        "body_too_large",
                    )
                ]
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
