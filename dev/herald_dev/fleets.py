"""Many Broadcasts applied at once, as a GitOps pipeline applies a folder: one ``kubectl
apply`` of a List, spread over several bots, each Broadcast to its own explicit chats.
Used by the end-to-end test at 50 and by ``bench/many_broadcasts.py`` at 200."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from herald.dev.kubectl import Kubectl

__all__ = ["Bot", "Fleet", "FleetBroadcast", "completed", "fleet", "wait_all_complete"]


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

    def manifest(self) -> dict[str, Any]:
        return {
            "apiVersion": "herald.dev/v1alpha1",
            "kind": "Broadcast",
            "metadata": {"name": self.name},
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
        broadcasts.append(FleetBroadcast(f"{prefix}-{i:03d}", chosen[i % len(chosen)], chats))
    return Fleet(chosen, tuple(broadcasts))


def _conditions(item: Mapping[str, Any]) -> dict[str, str]:
    status = item.get("status") or {}
    return {c["type"]: c["status"] for c in status.get("conditions", [])}


def completed(kubectl: Kubectl) -> dict[str, dict[str, Any]]:
    """The Broadcasts of the namespace with Complete=True, by name, with their status."""
    listed = json.loads(kubectl("get", "bc", "-o", "json", timeout=120).stdout)
    return {
        item["metadata"]["name"]: item["status"]
        for item in listed["items"]
        if _conditions(item).get("Complete") == "True"
    }


async def wait_all_complete(
    kubectl: Kubectl, names: Iterable[str], *, within: float, poll: float = 1.0
) -> dict[str, dict[str, Any]]:
    """Until every named Broadcast is Complete; their statuses. On time-out the error names
    how many are not, and a few of them with their Ready condition."""
    wanted = set(names)
    deadline = time.monotonic() + within
    done: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        done = await asyncio.to_thread(completed, kubectl)
        if wanted <= done.keys():
            return {name: done[name] for name in wanted}
        await asyncio.sleep(poll)
    missing = sorted(wanted - done.keys())
    listed = json.loads(kubectl("get", "bc", "-o", "json", timeout=120).stdout)
    ready = {
        item["metadata"]["name"]: next(
            (
                f"{c['reason']}: {c['message']}"
                for c in (item.get("status") or {}).get("conditions", [])
                if c["type"] == "Ready"
            ),
            "no status",
        )
        for item in listed["items"]
    }
    sample = "; ".join(f"{name} ({ready.get(name, 'gone')})" for name in missing[:5])
    raise AssertionError(
        f"{len(missing)} of {len(wanted)} Broadcasts not Complete after {within:.0f}s: {sample}"
    )
