"""The emulator over HTTP: the Bot API's paths and JSON, so aiogram talks to it unmodified,
plus JSON control endpoints under ``/_emulator/``. Handlers only translate; the behaviour
lives in EmulatorState."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from herald.emulator.emulating import EmulatorState, Reply
from herald.emulator.errors import ApiError
from herald.emulator.settings import EmulatorConfig

__all__ = ["CONTROL_PREFIX", "STATE", "RunningEmulator", "build_app", "run_emulator"]

CONTROL_PREFIX = "/_emulator"
STATE = web.AppKey("state", EmulatorState)

# Form bodies carry every value as a string; these stay strings, the rest are JSON-decoded
# when they parse (numbers, booleans, reply_markup, media lists), so a payload looks the same
# whichever encoding the client chose.
_STRING_FIELDS = frozenset(
    {
        "text",
        "caption",
        "parse_mode",
        "photo",
        "video",
        "document",
        "animation",
        "audio",
        "voice",
        "thumbnail",
        "callback_query_id",
        "inline_message_id",
        "url",
        "message_effect_id",
        "business_connection_id",
    }
)
# Telegram accepts uploads up to 50 MB.
_MAX_BODY = 50 * 2**20


def build_app(state: EmulatorState) -> web.Application:
    app = web.Application(client_max_size=_MAX_BODY)
    app[STATE] = state
    app.router.add_route("*", "/bot{token}/{method}", _bot_api)
    app.router.add_get(f"{CONTROL_PREFIX}/messages", _messages)
    app.router.add_get(f"{CONTROL_PREFIX}/refusals", _refusals)
    app.router.add_get(f"{CONTROL_PREFIX}/chat", _chat)
    app.router.add_get(f"{CONTROL_PREFIX}/summary", _summary)
    app.router.add_get(f"{CONTROL_PREFIX}/config", _config)
    app.router.add_post(f"{CONTROL_PREFIX}/config", _configure)
    app.router.add_post(f"{CONTROL_PREFIX}/updates", _inject_updates)
    app.router.add_post(f"{CONTROL_PREFIX}/reset", _reset)
    app.on_shutdown.append(_wake_pollers)
    return app


async def _wake_pollers(app: web.Application) -> None:
    # Otherwise a pending long poll holds shutdown for up to its timeout.
    app[STATE].wake_pollers()


async def _bot_api(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    # Telegram counts a request when it arrives: read the clock before parsing it (the first
    # request of a connection, or a busy loop, would otherwise be counted late). The
    # injected latency stands for the way in: it arrives that long after it was received.
    # Counted at the nominal time, not when the sleep ends: a busy loop wakes its timers
    # milliseconds late, and unevenly, which is this process's lag, not the network's (the
    # network's own unevenness is `--jitter-ms`).
    arrived = state.now()
    try:
        params = await _params(request)
    except ApiError as error:
        return _json(Reply.error(error).body, error.status)
    if delay := state.latency():
        await asyncio.sleep(delay)
        arrived += delay
    token, method = request.match_info["token"], request.match_info["method"]
    reply = await state.handle(token, method, params, arrived=arrived)
    if reply.dropped and request.transport is not None:
        # Delivered, but the client never learns it: the "sent, outcome unknown" case.
        # aiohttp quietly discards a response written to an aborted connection.
        request.transport.abort()
    if reply.page is not None:
        return web.Response(text=reply.page, status=reply.status, content_type="text/html")
    return _json(reply.body, reply.status)


async def _params(request: web.Request) -> dict[str, Any]:
    params: dict[str, Any] = {key: _decode(key, value) for key, value in request.query.items()}
    if not request.body_exists:
        return params
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except json.JSONDecodeError:
            raise ApiError(400, "Bad Request: can't parse JSON object") from None
        if not isinstance(body, dict):
            raise ApiError(400, "Bad Request: can't parse JSON object")
        return params | body
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        for key, value in (await request.post()).items():
            if isinstance(value, web.FileField):
                # An upload; attach://<key> references resolve to this description.
                size = len(value.file.read())
                params[key] = {"filename": value.filename, "size": size}
            elif isinstance(value, str):
                params[key] = _decode(key, value)
    return params


def _decode(key: str, value: str) -> Any:
    if key in _STRING_FIELDS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


async def _messages(request: web.Request) -> web.Response:
    query = request.query
    try:
        chat_id = int(query["chat_id"]) if "chat_id" in query else None
    except ValueError:
        return _json({"error": "chat_id must be an integer"}, 400)
    messages = request.app[STATE].recorder.messages(
        token=query.get("token"), chat_id=chat_id, method=query.get("method")
    )
    return _json({"messages": [message.model_dump(mode="json") for message in messages]})


async def _chat(request: web.Request) -> web.Response:
    query = request.query
    try:
        chat_id = int(query["chat_id"])
    except (KeyError, ValueError):
        return _json({"error": "chat_id must be an integer"}, 400)
    token = query.get("token")
    if not token:
        return _json({"error": "token is required"}, 400)
    return _json({"messages": request.app[STATE].chat(token, chat_id)})


async def _refusals(request: web.Request) -> web.Response:
    query = request.query
    try:
        status = int(query["status"]) if "status" in query else None
    except ValueError:
        return _json({"error": "status must be an integer"}, 400)
    refusals = request.app[STATE].recorder.refusals(
        token=query.get("token"), status=status, method=query.get("method")
    )
    return _json({"refusals": [refusal.model_dump(mode="json") for refusal in refusals]})


async def _summary(request: web.Request) -> web.Response:
    summary = request.app[STATE].recorder.summary(token=request.query.get("token"))
    return _json(summary.model_dump(mode="json"))


async def _config(request: web.Request) -> web.Response:
    return _json(request.app[STATE].config.model_dump(mode="json"))


async def _configure(request: web.Request) -> web.Response:
    patch = await _body(request)
    if not isinstance(patch, Mapping):
        return _json({"error": "expected a JSON object"}, 400)
    try:
        config = request.app[STATE].configure(patch)
    except ValidationError as error:
        return _json({"error": str(error)}, 400)
    return _json(config.model_dump(mode="json"))


async def _inject_updates(request: web.Request) -> web.Response:
    body = await _body(request)
    if not isinstance(body, Mapping) or not isinstance(body.get("token"), str):
        return _json({"error": 'expected {"token": ..., "updates": [...]}'}, 400)
    updates = body.get("updates", [body["update"]] if "update" in body else None)
    if not isinstance(updates, list) or not all(isinstance(u, Mapping) for u in updates):
        return _json({"error": '"updates" must be a list of objects'}, 400)
    try:
        update_ids = request.app[STATE].inject_updates(body["token"], updates)
    except ValueError as error:
        return _json({"error": str(error)}, 400)
    return _json({"update_ids": update_ids})


async def _reset(request: web.Request) -> web.Response:
    request.app[STATE].reset()
    return _json({"ok": True})


async def _body(request: web.Request) -> Any:
    try:
        return await request.json()
    except json.JSONDecodeError:
        return None


@dataclass(frozen=True)
class RunningEmulator:
    url: str
    host: str
    port: int
    state: EmulatorState


@asynccontextmanager
async def run_emulator(
    config: EmulatorConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    state: EmulatorState | None = None,
) -> AsyncIterator[RunningEmulator]:
    """Serve the emulator until the block ends; port 0 picks a free port. Pass `state`
    instead of `config` to control its clocks."""
    if state is not None and config is not None:
        raise ValueError("pass either a config or a state, not both")
    if state is None:
        state = EmulatorState(config)
    # No access log: at thousands of requests a second it would cost more than the answers.
    runner = web.AppRunner(build_app(state), access_log=None, shutdown_timeout=5)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_port = int(runner.addresses[0][1])
        yield RunningEmulator(f"http://{host}:{bound_port}", host, bound_port, state)
    finally:
        await runner.cleanup()
