"""``herald dev demo``: the whole system on this machine, one broadcast delivered live.

Brings the dev stack up, loads demo subscribers (some of whom blocked the bot, as the
emulator is told), applies the demo Broadcast and follows its status until it is Complete,
then shows ``kubectl get bc``, what the emulator actually received, and the report the admin
bot sent the Bot's admin.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import yaml

from herald.core.importing import import_subscribers
from herald.core.subscribers import Subscriber
from herald.dev import processes, stack
from herald.dev.kubectl import Kubectl, repo_root
from herald.emulator import EmulatorClient

__all__ = ["run_demo"]

NAMESPACE = stack.DEV_NAMESPACE
# The admin of examples/bot.yaml, to whom the bot reports the broadcast.
ADMIN = 1001
SUBSCRIBERS = 2000
BLOCKED = range(1_000_001, 1_000_041)  # 40 chats that blocked the bot
DEACTIVATED = range(1_000_041, 1_000_051)  # 10 deleted accounts
_BAR = 30


def demo_subscribers() -> list[Subscriber]:
    languages = ("en", "ru", "de", None)
    first_names = ("Anna", "Boris", "Chen", "Dana", "Emil", "Fatima", "Goran", "Hana")
    return [
        Subscriber(
            chat_id=1_000_001 + i,
            username=f"user{i}",
            first_name=first_names[i % len(first_names)],
            language_code=languages[i % len(languages)],
            tags=("beta",) if i % 10 == 0 else (),
        )
        for i in range(SUBSCRIBERS)
    ]


def demo_bot_id(secret: Path) -> str:
    """The id of the demo's bot: its token's digits before the colon."""
    return _demo_token(secret).partition(":")[0]


async def _seed(env: dict[str, str], *, bot_id: str) -> None:
    connection = await asyncpg.connect(env["HERALD_DATABASE_URL"])
    try:
        await import_subscribers(connection, demo_subscribers(), bot_id=bot_id)
    finally:
        await connection.close()
    async with EmulatorClient(env["HERALD_TELEGRAM_API_URL"]) as emulator:
        await emulator.configure(
            {"blocked": list(BLOCKED), "deactivated": list(DEACTIVATED), "faults": {}}
        )


def _bar(status: dict[str, Any]) -> str:
    total = int(status.get("total") or 0)
    done = sum(int(status.get(k) or 0) for k in ("delivered", "failed", "blocked", "uncertain"))
    filled = int(_BAR * done / total) if total else 0
    return (
        f"\r[{'#' * filled}{'.' * (_BAR - filled)}] {status.get('progress', '0%'):>4} "
        f"{status.get('phase', 'Pending'):<9} delivered {status.get('delivered', 0)}/{total} "
        f"blocked {status.get('blocked', 0)} failed {status.get('failed', 0)} "
        f"rate {status.get('observedRate', '-')} eta {status.get('eta', '-')}   "
    )


def _condition(status: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for condition in status.get("conditions", []):
        if condition.get("type") == kind:
            return dict(condition)
    return None


def _demo_token(secret: Path) -> str:
    return str(yaml.safe_load(secret.read_text())["stringData"]["token"])


async def _report(url: str, *, token: str, after: int, within: float = 30) -> str | None:
    """The admin bot's report to the Bot's admin, once it is sent."""
    deadline = time.monotonic() + within
    async with EmulatorClient(url) as emulator:
        while time.monotonic() < deadline:
            sent = await emulator.messages(token=token, chat_id=ADMIN, method="sendMessage")
            for message in sent[after:]:
                text = str(message.payload.get("text", ""))
                if "finished" in text:
                    return text
            await asyncio.sleep(0.5)
    return None


async def _sent_to_admin(url: str, *, token: str) -> int:
    async with EmulatorClient(url) as emulator:
        return len(await emulator.messages(token=token, chat_id=ADMIN, method="sendMessage"))


def run_demo(state_dir: Path, *, say: Callable[[str], None], timeout: float = 600) -> int:
    state = stack.up(state_dir, stack.StackOptions(), say=say)
    if "telegram-emulator" not in state.services:
        raise processes.HarnessError("the demo needs the Telegram emulator: run 'herald dev down'")
    admin = Kubectl(Path(state.env["KUBECONFIG"]))
    admin("create", "namespace", NAMESPACE, check=False)
    kubectl = admin.in_namespace(NAMESPACE)
    say(f"loading {SUBSCRIBERS} demo subscribers ({len(BLOCKED)} blocked the bot)")
    examples = repo_root() / "examples"
    secret = examples / "bot-secret.yaml"
    asyncio.run(_seed(state.env, bot_id=demo_bot_id(secret)))
    telegram = state.env["HERALD_TELEGRAM_API_URL"]
    token = _demo_token(secret)
    kubectl("delete", "-f", str(examples / "broadcast.yaml"), "--ignore-not-found", "--wait")
    reports_before = asyncio.run(_sent_to_admin(telegram, token=token))
    # The stack applied the Bot already; applying it again keeps the demo self-contained.
    kubectl(
        "apply",
        "-f",
        str(examples / "bot-secret.yaml"),
        "-f",
        str(examples / "bot.yaml"),
        "-f",
        str(examples / "broadcast.yaml"),
    )
    say("applied examples/broadcast.yaml; following its status:")
    deadline = time.monotonic() + timeout
    outcome = 1
    while time.monotonic() < deadline:
        status = json.loads(kubectl("get", "bc", "hello", "-o", "json").stdout).get("status", {})
        sys.stdout.write(_bar(status))
        sys.stdout.flush()
        complete = _condition(status, "Complete")
        stalled = _condition(status, "Stalled")
        if complete is not None and complete.get("status") == "True":
            outcome = 0
            break
        if stalled is not None and stalled.get("status") == "True":
            say(f"\nthe broadcast stalled: {stalled.get('reason')}: {stalled.get('message')}")
            break
        time.sleep(0.5)
    else:
        say(f"\nthe broadcast did not complete within {timeout:.0f}s")
    say("\n")
    say(kubectl("get", "bc").stdout)

    if outcome == 0:
        report = asyncio.run(_report(telegram, token=token, after=reports_before))
        username = kubectl(
            "get", "bot", "demo-bot", "-o", "jsonpath={.status.username}", check=False
        ).stdout
        if report is None:
            say(f"the admin bot sent its admin {ADMIN} no report (see .herald/dev/logs/bot.log)")
        else:
            say(f"the admin bot @{username or '?'} reported to its admin {ADMIN}:")
            say("  " + report.replace("\n", "\n  "))

    async def summary() -> dict[str, Any]:
        async with EmulatorClient(telegram) as emulator:
            return (await emulator.summary()).model_dump()

    received = asyncio.run(summary())
    duplicates = sum(len(chats) for chats in received["duplicates"].values())
    say(
        "the Telegram emulator received: "
        f"{received['total']} messages (the admin bot's included), "
        f"{duplicates} chats messaged twice, "
        f"at most {max(received['max_per_second'].values(), default=0)} in any second, "
        f"{sum(received['too_many_requests'].values())} answered 429, "
        f"errors by status {received['errors']}"
    )
    say("the stack keeps running: '. .herald/dev/env' to use it, 'make down' to stop it")
    return outcome
