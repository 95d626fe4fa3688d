"""The one webhook server of the process: every bot in webhook mode, each on its own path,
each checked against its own secret.

aiogram's request handlers do not fit a set of bots that changes while the server runs:
``SimpleRequestHandler`` serves one bot on a route added before the application starts (aiohttp
freezes its routes then), and ``TokenBasedRequestHandler`` takes the token from the URL path,
mints a Bot for any token posted to it and checks no secret. Here one route takes every POST
and finds the bot by the request's path in a table that bots join and leave; a request for no
bot is 404, one without the bot's secret in ``X-Telegram-Bot-Api-Secret-Token`` is 401 and
counted. A checked update is handed to the bot's ``admit``, which waits for room under the
process's bound on updates in flight and runs it in the background: Telegram is answered as
soon as the update is taken, and a full process answers later instead of taking more.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiogram import Bot
from aiogram.types import Update
from aiohttp import web
from pydantic import SecretStr, ValidationError

from herald.bot.metrics import Metrics, WebhookRefusal

__all__ = ["SECRET_HEADER", "Route", "Webhooks"]

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name


@dataclass(frozen=True, kw_only=True)
class Route:
    bot: Bot
    secret: SecretStr
    admit: Callable[[Update], Awaitable[None]]
    label: str


class Webhooks:
    def __init__(self, *, host: str, port: int, metrics: Metrics) -> None:
        self._host = host
        self._port = port
        self._metrics = metrics
        self._routes: dict[str, Route] = {}
        self._runner: web.AppRunner | None = None

    @property
    def port(self) -> int:
        return self._port

    def add(self, path: str, route: Route) -> None:
        if path in self._routes:
            raise ValueError(f"webhook path {path} is taken")
        self._routes[path] = route

    def remove(self, path: str) -> None:
        self._routes.pop(path, None)

    def application(self) -> web.Application:
        application = web.Application()
        application.router.add_post("/{path:.*}", self.handle)
        return application

    async def start(self) -> None:
        """Listen, unless already listening: the first bot in webhook mode starts the server
        and it stays up, so a bot that comes back finds it."""
        if self._runner is not None:
            return
        runner = web.AppRunner(self.application(), access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, self._host, self._port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        logger.info("Webhook server listening on port %d", self._port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def handle(self, request: web.Request) -> web.Response:
        route = self._routes.get(request.path)
        if route is None:
            self._metrics.webhook_refusals.labels(WebhookRefusal.UNKNOWN_PATH.value).inc()
            return web.Response(status=404, text="Not Found")
        given = request.headers.get(SECRET_HEADER)
        if given is None or not hmac.compare_digest(
            given.encode(), route.secret.get_secret_value().encode()
        ):
            reason = WebhookRefusal.NO_SECRET if given is None else WebhookRefusal.WRONG_SECRET
            self._metrics.webhook_refusals.labels(reason.value).inc()
            logger.warning("%s: refused a webhook call: %s", route.label, reason.value)
            return web.Response(status=401, text="Unauthorized")
        try:
            body: Any = await request.json(loads=route.bot.session.json_loads)
            update = Update.model_validate(body, context={"bot": route.bot})
        except (ValueError, ValidationError):
            logger.warning("%s: a webhook call that is no update", route.label)
            return web.Response(status=400, text="Bad Request")
        await route.admit(update)
        return web.json_response({})
