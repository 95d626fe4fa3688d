"""Many Broadcasts applied at once, as a GitOps pipeline applies a folder: one ``kubectl
apply`` of a List, spread over several bots, each Broadcast to its own explicit chats.
Used by the end-to-end test at 50 and by ``bench/many_broadcasts.py`` at 200."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import yaml
from kubernetes import client, config

from herald.dev.kubectl import Kubectl

__all__ = ["FLEET_LABEL", "Bot", "Fleet", "FleetBroadcast", "fleet", "wait_all_complete"]

# Each Broadcast of a fleet carries its fleet's name, so a poll lists only that fleet: a
# list of every Broadcast in a namespace with a thousand finished ones beside is megabytes
# a second of load on the API server and on the machine being measured.
FLEET_LABEL = "herald.dev/fleet"


@dataclass(frozen=True)
class Bot:
    """A bot token Secret in the namespace; the emulator accepts any well-formed token."""

    secret: str
    token: str
    messages_per_second: int = 30


@dataclass(frozen=True)
class FleetBroadcast:
    name: str
    bot: Bot
    chat_ids: tuple[int, ...]
    fleet: str

    def manifest(self) -> dict[str, Any]:
        return {
            "apiVersion": "herald.dev/v1alpha1",
            "kind": "Broadcast",
            "metadata": {"name": self.name, "labels": {FLEET_LABEL: self.fleet}},
            "spec": {
                "botRef": {"name": self.bot.secret},
                "content": {"text": f"{self.name} says hello"},
                "audience": {"chatIds": list(self.chat_ids)},
                "rate": {"messagesPerSecond": self.bot.messages_per_second},
            },
        }


@dataclass(frozen=True)
class Fleet:
    bots: tuple[Bot, ...]
    broadcasts: tuple[FleetBroadcast, ...]

    def list_manifest(self) -> str:
        """One ``kind: List`` holding every Broadcast, as ``kubectl apply -f folder`` sends."""
        items = [b.manifest() for b in self.broadcasts]
        return yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items})

    def recipients(self, bot: Bot) -> int:
        return sum(len(b.chat_ids) for b in self.broadcasts if b.bot == bot)

    def ideal_seconds(self) -> float:
        """Every bot at its limit from the first moment: the bots run side by side, so the
        slowest bot's recipients over its limit."""
        return max(self.recipients(bot) / bot.messages_per_second for bot in self.bots)


def fleet(
    count: int,
    *,
    bots: Iterable[Bot],
    smallest: int = 10,
    largest: int = 100,
    seed: int = 16,
    prefix: str = "fleet",
    first_chat: int = 5_000_000,
) -> Fleet:
    """``count`` Broadcasts, round-robin over ``bots``, of ``smallest``..``largest`` chats
    each; no chat is in two Broadcasts, so a chat messaged twice is a duplicate."""
    chosen = tuple(bots)
    rng = random.Random(seed)  # noqa: S311 - audience sizes, not secrets
    broadcasts = []
    next_chat = first_chat
    for i in range(count):
        size = rng.randint(smallest, largest)
        chats = tuple(range(next_chat, next_chat + size))
        next_chat += size
        name = f"{prefix}-{i:03d}"
        broadcasts.append(FleetBroadcast(name, chosen[i % len(chosen)], chats, prefix))
    return Fleet(chosen, tuple(broadcasts))


def _conditions(item: Mapping[str, Any]) -> dict[str, str]:
    status = item.get("status") or {}
    return {c["type"]: c["status"] for c in status.get("conditions", [])}


def _ready(item: Mapping[str, Any]) -> str:
    for c in (item.get("status") or {}).get("conditions", []):
        if c["type"] == "Ready":
            return f"{c['reason']}: {c['message']}"
    return "no status"


class _Broadcasts:
    """The namespace's Broadcasts, listed through the API client: a kubectl process per
    poll would cost more CPU than the operator it watches."""

    def __init__(self, kubectl: Kubectl, selector: str | None) -> None:
        self._selector = selector
        self._api = client.CustomObjectsApi(
            config.new_client_from_config(str(kubectl.kubeconfig))  # type: ignore[no-untyped-call]
        )
        self._namespace = kubectl.namespace or "default"

    def list(self) -> list[dict[str, Any]]:
        listed = cast(
            "dict[str, Any]",
            self._api.list_namespaced_custom_object(
                "herald.dev",
                "v1alpha1",
                self._namespace,
                "broadcasts",
                label_selector=self._selector or "",
            ),
        )
        items: list[dict[str, Any]] = listed["items"]
        return items

    def close(self) -> None:
        self._api.api_client.close()


async def wait_all_complete(
    kubectl: Kubectl,
    names: Iterable[str],
    *,
    within: float,
    poll: float = 1.0,
    fleet: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Until every named Broadcast is Complete; their statuses. On time-out the error names
    how many are not, and a few of them with their Ready condition."""
    wanted = set(names)
    deadline = time.monotonic() + within
    broadcasts = _Broadcasts(kubectl, f"{FLEET_LABEL}={fleet}" if fleet else None)
    try:
        while True:
            items = await asyncio.to_thread(broadcasts.list)
            done = {
                item["metadata"]["name"]: item["status"]
                for item in items
                if _conditions(item).get("Complete") == "True"
            }
            if wanted <= done.keys():
                return {name: done[name] for name in wanted}
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(poll)
    finally:
        broadcasts.close()
    missing = sorted(wanted - done.keys())
    ready = {item["metadata"]["name"]: _ready(item) for item in items}
    sample = "; ".join(f"{name} ({ready.get(name, 'gone')})" for name in missing[:5])
    raise AssertionError(
        f"{len(missing)} of {len(wanted)} Broadcasts not Complete after {within:.0f}s: {sample}"
    )
