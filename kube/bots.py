"""The id of a Bot resource's bot, as its status tells it once the operator has verified the
token with getMe: what a tool names a bot by when it acts on the bot's data."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from herald.core.bots import BOT_PLURAL
from herald.core.broadcasts import GROUP, VERSION
from herald.core.subscribers import is_bot_id
from herald.kube.errors import KubeError, translated

__all__ = ["BotNotVerified", "bot_id_in", "bot_id_of"]


class BotNotVerified(KubeError):
    """The Bot exists, but its status names no bot id yet: its token is not verified."""


def bot_id_in(body: dict[str, Any]) -> str:
    """The bot id a Bot object's ``status.botId`` names, as the digits Herald stores;
    :class:`BotNotVerified` when it names none, :class:`KubeError` when it is no id."""
    meta = body.get("metadata") or {}
    where = f'Bot "{meta.get("namespace")}/{meta.get("name")}"'
    found = (body.get("status") or {}).get("botId")
    if found is None:
        raise BotNotVerified(
            f"{where} has no status.botId yet: the operator has not verified its token"
        )
    # getMe's integer, as the CRD types it; its digits are taken too, booleans never.
    text = str(found) if isinstance(found, int | str) and not isinstance(found, bool) else ""
    if not is_bot_id(text):
        raise KubeError(f"{where} has status.botId {found!r}, not a bot id")
    return text


def bot_id_of(
    api: client.ApiClient, namespace: str, name: str, *, timeout: float | None = None
) -> str:
    """The bot id of the Bot ``namespace/name`` (:func:`bot_id_in`);
    :class:`~herald.kube.errors.NotFound` when there is no such Bot."""
    with translated():
        body: Any = client.CustomObjectsApi(api).get_namespaced_custom_object(
            GROUP, VERSION, namespace, BOT_PLURAL, name, _request_timeout=timeout
        )
    return bot_id_in(dict(body))
