"""``herald dev demo``: the whole system on this machine, one broadcast delivered live and one
transactional message sent beside it.

Brings the dev stack up, loads demo subscribers (some of whom blocked the bot, as the
emulator is told), applies the demo Broadcast and follows its status until it is Complete,
then shows ``kubectl get bc``, what the emulator actually received, and the report the admin
bot sent the Bot's admin. While the broadcast is sending, the application of
examples/transactional-app.yaml (ServiceAccount ``demo-app``) sends one message to one
subscriber through herald-api with its own token, waits for the outcome, and sends it again
with the same Idempotency-Key, which returns the same message instead of a second one.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
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
# The transactional message: from the application of examples/transactional-app.yaml, with
# the demo Bot, to one subscriber who neither blocked the bot nor deleted the account.
BOT = "demo-bot"
APP = "demo-app"
CUSTOMER = 1_000_100
SHIPPED = "Your order #1001 has shipped. Track it at https://shop.example/orders/1001"
# ?wait= of the first POST: a message goes ahead of the broadcast, so a few seconds at most.
WAIT_SECONDS = 10


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


@dataclass(frozen=True)
class Answer:
    """herald-api's answer to one request."""

    status: int
    body: dict[str, Any]


@dataclass(frozen=True)
class Transactional:
    """The two POSTs of one message, with one Idempotency-Key."""

    url: str
    key: str
    first: Answer
    again: Answer

    @property
    def sent_once(self) -> bool:
        """Both answers name the same message: the second POST sent nothing."""
        return self.first.body.get("id") is not None and (
            self.first.body.get("id") == self.again.body.get("id")
        )


def messages_url(api_url: str, *, namespace: str = NAMESPACE, bot: str = BOT) -> str:
    return f"{api_url}/v1/namespaces/{namespace}/bots/{bot}/messages"


def post_message(url: str, *, token: str, key: str, body: dict[str, Any]) -> Answer:
    """One POST to herald-api; error answers are answers too."""
    request = urllib.request.Request(  # noqa: S310 - the stack's own loopback URL
        url,
        data=json.dumps(body).encode(),
        headers={
            "Authorization": f"Bearer {token}",
            "Idempotency-Key": key,
            "Content-Type": "application/json",
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=WAIT_SECONDS + 20) as response:  # noqa: S310
            return Answer(int(response.status), json.loads(response.read() or b"{}"))
    except urllib.error.HTTPError as error:
        text = error.read().decode(errors="replace")
        try:
            detail = json.loads(text)
        except json.JSONDecodeError:
            detail = {"detail": text}
        return Answer(int(error.code), detail if isinstance(detail, dict) else {"detail": detail})


def send_transactional(api_url: str, kubectl: Kubectl, *, key: str) -> Transactional:
    """What an application does: a token of its ServiceAccount (TokenRequest, as a projected
    volume would hold it), one POST that waits for the outcome, and a retry of the same
    request, as a client does when it missed the answer."""
    token = kubectl("create", "token", APP, "--duration=10m").stdout.strip()
    body = {"chatId": CUSTOMER, "content": {"text": SHIPPED}}
    url = messages_url(api_url)
    first = post_message(f"{url}?wait={WAIT_SECONDS}", token=token, key=key, body=body)
    again = post_message(url, token=token, key=key, body=body)
    return Transactional(url=url, key=key, first=first, again=again)


def curl_command(*, key: str) -> str:
    """The same POST by hand, from a shell that sourced .herald/dev/env."""
    body = json.dumps({"chatId": CUSTOMER, "content": {"text": "Your order has shipped"}})
    return (
        f'curl -X POST "{messages_url("$HERALD_API_URL")}?wait={WAIT_SECONDS}" \\\n'
        f'    -H "Authorization: Bearer $(kubectl -n {NAMESPACE} create token {APP})" \\\n'
        f'    -H "Idempotency-Key: {key}-by-hand" -H "Content-Type: application/json" \\\n'
        f"    -d '{body}'"
    )


async def _received(url: str, *, token: str, chat_id: int, text: str) -> int:
    async with EmulatorClient(url) as emulator:
        sent = await emulator.messages(token=token, chat_id=chat_id, method="sendMessage")
    return sum(1 for message in sent if message.payload.get("text") == text)


def _report_transactional(
    sent: Transactional, *, delivered: int, say: Callable[[str], None]
) -> bool:
    """Says what herald-api answered; whether the message went out once and only once."""
    say(f"herald-api: {APP} sent one message to chat {CUSTOMER} while the broadcast was sending:")
    say(f"  POST {sent.url}?wait={WAIT_SECONDS}  (Idempotency-Key: {sent.key})")
    say(f"  -> {sent.first.status} {json.dumps(sent.first.body)}")
    if sent.first.status == 202:
        say(f"  (not final within {WAIT_SECONDS}s; GET {sent.url}/<id> tells the outcome)")
    same = "the same message, not sent again" if sent.sent_once else "NOT the same message"
    say(f"  the same request again -> {sent.again.status}: {same}")
    say(f"  the Telegram emulator received it {delivered} time(s)")
    say("  by hand, after '. .herald/dev/env':\n    " + curl_command(key=sent.key))
    if sent.first.body.get("state") == "delivered":
        return sent.sent_once and delivered == 1
    return sent.first.status in {200, 202} and sent.sent_once and delivered <= 1


def _follow(
    kubectl: Kubectl, *, timeout: float, say: Callable[[str], None], sending: Callable[[], None]
) -> int:
    """Draws the broadcast's progress until it is Complete (0) or stalls or times out (1);
    calls ``sending`` once, when it is first seen sending (or already done)."""
    deadline = time.monotonic() + timeout
    told = False
    while time.monotonic() < deadline:
        status = json.loads(kubectl("get", "bc", "hello", "-o", "json").stdout).get("status", {})
        sys.stdout.write(_bar(status))
        sys.stdout.flush()
        if not told and status.get("phase") in {"Sending", "Completed"}:
            sending()
            told = True
        complete = _condition(status, "Complete")
        stalled = _condition(status, "Stalled")
        if complete is not None and complete.get("status") == "True":
            return 0
        if stalled is not None and stalled.get("status") == "True":
            say(f"\nthe broadcast stalled: {stalled.get('reason')}: {stalled.get('message')}")
            return 1
        time.sleep(0.5)
    say(f"\nthe broadcast did not complete within {timeout:.0f}s")
    return 1


def _summarise(telegram: str, *, say: Callable[[str], None]) -> None:
    async def summary() -> dict[str, Any]:
        async with EmulatorClient(telegram) as emulator:
            return (await emulator.summary()).model_dump()

    received = asyncio.run(summary())
    # The customer is sent the broadcast and the transactional message: two, both expected.
    duplicates = sum(
        1
        for chats in received["duplicates"].values()
        for chat, count in chats.items()
        if count > (2 if int(chat) == CUSTOMER else 1)
    )
    say(
        "the Telegram emulator received: "
        f"{received['total']} messages (the admin bot's included), "
        f"{duplicates} chats messaged twice, "
        f"at most {max(received['max_per_second'].values(), default=0)} in any second, "
        f"{sum(received['too_many_requests'].values())} answered 429, "
        f"errors by status {received['errors']}"
    )


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
    # The stack applied the Bot and the application already; applying them again keeps the
    # demo self-contained.
    manifests = ("bot-secret.yaml", "bot.yaml", stack.DEV_APP, "broadcast.yaml")
    kubectl("apply", *(arg for name in manifests for arg in ("-f", str(examples / name))))
    say("applied examples/broadcast.yaml; following its status:")
    # Sent from a thread once the broadcast is sending, so the progress goes on meanwhile.
    background = ThreadPoolExecutor(max_workers=1)
    transactional: list[Future[Transactional]] = []
    key = f"demo-order-1001-{int(time.time())}"

    def send() -> None:
        api_url = state.env["HERALD_API_URL"]
        transactional.append(background.submit(send_transactional, api_url, kubectl, key=key))

    outcome = _follow(kubectl, timeout=timeout, say=say, sending=send)
    say("\n")
    say(kubectl("get", "bc").stdout)
    if not transactional:
        send()
    sent = transactional[0].result()
    background.shutdown()

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

    delivered = asyncio.run(_received(telegram, token=token, chat_id=CUSTOMER, text=SHIPPED))
    if not _report_transactional(sent, delivered=delivered, say=say):
        outcome = 1
    _summarise(telegram, say=say)
    say("the stack keeps running: '. .herald/dev/env' to use it, 'make down' to stop it")
    return outcome
