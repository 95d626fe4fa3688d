"""``kubectl broadcast`` on the real API server, and its test send on the emulator."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml

from herald.emulator import EmulatorClient, RunningEmulator

pytestmark = pytest.mark.controlplane

TOKEN = "777001:plugin-test-token"


def _managers_of_paused(body: dict[str, Any]) -> set[str]:
    return {
        entry["manager"]
        for entry in body["metadata"].get("managedFields", ())
        if "f:paused" in entry.get("fieldsV1", {}).get("f:spec", {})
    }


def test_list_shows_phase_and_progress(plugin: Any) -> None:
    plugin.create("sale", "sending")
    plugin.create("done", "complete")

    result = plugin("list")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "NAME",
        "PHASE",
        "PROGRESS",
        "DELIVERED",
        "FAILED",
        "PENDING",
        "PAUSED",
        "AGE",
    ]
    rows = {line.split()[0]: line.split()[1:7] for line in lines[1:]}
    assert rows == {
        "done": ["Completed", "100%", "990", "4", "0", "no"],
        "sale": ["Sending", "37%", "370", "2", "625", "no"],
    }


def test_list_all_namespaces_names_them(plugin: Any) -> None:
    plugin.create("sale", "sending")

    result = plugin("list", "-A")

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split()[0] == "NAMESPACE"
    assert [plugin.namespace, "sale", "Sending"] in [
        line.split()[:3] for line in result.stdout.splitlines()
    ]


def test_list_of_an_empty_namespace_says_so(plugin: Any) -> None:
    result = plugin("list")

    assert result.returncode == 0
    assert result.stdout == ""
    assert result.stderr.strip() == f"No broadcasts found in {plugin.namespace} namespace."


def test_status_shows_a_progress_bar_and_conditions(plugin: Any) -> None:
    plugin.create("sale", "sending")

    result = plugin("status", "sale")

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"Broadcast:   {plugin.namespace}/sale" in out
    assert "Phase:       Sending" in out
    # 375 of 1000 terminal: 11 of 30 cells, and the operator's own percentage.
    assert "[" + "#" * 11 + "-" * 19 + "] 37%  375/1000" in out
    assert "delivered 370, blocked 3, failed 2, uncertain 0, pending 625" in out
    conditions = {
        line.split()[0]: line.split()[1:3]
        for line in out.split("Conditions:\n", 1)[1].splitlines()[1:]
    }
    assert conditions == {
        "Ready": ["False", "Sending"],
        "Reconciling": ["True", "Sending"],
        "Stalled": ["False", "Sending"],
        "Paused": ["False", "NotPaused"],
        "Complete": ["False", "Sending"],
    }
    assert "625 of 1000 recipients to go." in out


def test_status_says_when_the_operator_lags_behind_the_spec(plugin: Any) -> None:
    plugin.create("sale", "sending")
    plugin.kubectl("patch", "broadcast", "sale", "--type=merge", "-p", '{"spec":{"paused":true}}')

    out = plugin("status", "sale").stdout

    assert "Phase:       Sending  (spec.paused: true)" in out
    assert "has not yet observed generation 2 (status is of generation 1)" in out


def test_pause_and_resume_patch_spec_paused_as_the_plugin(plugin: Any) -> None:
    plugin.create("sale", "sending")

    paused = plugin("pause", "sale")

    assert paused.returncode == 0, paused.stderr
    assert paused.stdout.strip() == "broadcast.herald.dev/sale paused"
    body = plugin.get("sale")
    assert body["spec"]["paused"] is True
    assert _managers_of_paused(body) == {"kubectl-broadcast"}
    # Only spec.paused changed: the rest of the spec is still the applier's.
    assert body["metadata"]["generation"] == 2

    resumed = plugin("resume", "sale")

    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip() == "broadcast.herald.dev/sale resumed"
    body = plugin.get("sale")
    assert body["spec"]["paused"] is False
    assert _managers_of_paused(body) == {"kubectl-broadcast"}


@pytest.mark.parametrize("command", ["status", "pause", "resume"])
def test_an_unknown_broadcast_is_a_clear_error(plugin: Any, command: str) -> None:
    result = plugin(command, "nope")

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip() == (
        f'Error: broadcast "nope" not found in namespace "{plugin.namespace}"'
    )


def test_the_contexts_namespace_is_the_default(plugin: Any, tmp_path: Path) -> None:
    plugin.create("sale", "sending")
    kubeconfig = yaml.safe_load(plugin.kubectl.kubeconfig.read_text())
    cluster = kubeconfig["contexts"][0]["context"]
    kubeconfig["contexts"].append(
        {"name": "marketing", "context": {**cluster, "namespace": plugin.namespace}}
    )
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig))

    result = plugin.raw(
        ["kubectl-broadcast", "list", f"--kubeconfig={path}", "--context=marketing"]
    )

    assert result.returncode == 0, result.stderr
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["NAME", "sale"]


def test_an_unknown_context_is_a_clear_error(plugin: Any) -> None:
    result = plugin("list", "--context=nowhere")

    assert result.returncode == 1
    assert result.stderr.startswith("Error: cannot load the kubeconfig")
    assert "nowhere" in result.stderr


def _secret(plugin: Any, name: str, token: str) -> None:
    plugin.kubectl(
        "apply",
        "--filename=-",
        input=json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name},
                "data": {"token": base64.b64encode(token.encode()).decode()},
            }
        ),
    )


async def _ledger_rows(dsn: str) -> int:
    connection = await asyncpg.connect(dsn)
    try:
        return int(await connection.fetchval("SELECT count(*) FROM deliveries"))
    finally:
        await connection.close()


async def test_test_send_reaches_exactly_the_given_chats(
    plugin: Any, emulator: RunningEmulator, database: str
) -> None:
    _secret(plugin, "shop-bot", TOKEN)
    before = plugin.create(
        "sale",
        "sending",
        audience={"chatIds": [501, 502, 503]},
        content={"text": "<b>Sale</b> for {first_name}", "parseMode": "HTML"},
    )
    env = {"HERALD_TELEGRAM_API_URL": emulator.url, "HERALD_DATABASE_URL": database}

    result = await asyncio.to_thread(
        plugin, "test-send", "sale", "--chat-id", "9001", "--chat-id=9002", env=env
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"9001: sent \(message \d+\)", lines[0])
    assert re.fullmatch(r"9002: sent \(message \d+\)", lines[1])
    assert "sent to 2 of 2 chats" in lines[2]
    async with EmulatorClient(emulator.url) as telegram:
        messages = await telegram.messages()
    assert sorted((m.token, m.method, m.chat_id) for m in messages) == [
        (TOKEN, "sendMessage", 9001),
        (TOKEN, "sendMessage", 9002),
    ]
    # Rendered as the senders render: parse mode kept, unknown name left empty.
    assert {m.payload["text"] for m in messages} == {"<b>Sale</b> for "}
    assert {m.payload["parse_mode"] for m in messages} == {"HTML"}
    # Nothing written anywhere: not the object (status included), not the ledger.
    after = plugin.get("sale")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert await _ledger_rows(database) == 0


async def test_test_send_renders_the_requested_language(
    plugin: Any, emulator: RunningEmulator
) -> None:
    _secret(plugin, "shop-bot", TOKEN)
    plugin.create(
        "sale",
        "sending",
        content={"text": "Sale", "parseMode": "None", "localized": {"ru": {"text": "Распродажа"}}},
    )

    result = await asyncio.to_thread(
        plugin,
        "test-send",
        "sale",
        "--chat-id=9001",
        "--language=ru",
        env={"HERALD_TELEGRAM_API_URL": emulator.url},
    )

    assert result.returncode == 0, result.stderr
    async with EmulatorClient(emulator.url) as telegram:
        messages = await telegram.messages()
    assert [(m.chat_id, m.payload["text"]) for m in messages] == [(9001, "Распродажа")]


async def test_test_send_reports_a_chat_telegram_refuses(
    plugin: Any, emulator: RunningEmulator
) -> None:
    _secret(plugin, "shop-bot", TOKEN)
    plugin.create("sale", "sending")
    async with EmulatorClient(emulator.url) as telegram:
        await telegram.configure({"blocked": [9002]})

    result = await asyncio.to_thread(
        plugin,
        "test-send",
        "sale",
        "--chat-id=9001",
        "--chat-id=9002",
        env={"HERALD_TELEGRAM_API_URL": emulator.url},
    )

    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("9001: sent")
    assert lines[1].startswith("9002: failed: ")
    assert "blocked" in lines[1]
    assert "sent to 1 of 2 chats" in lines[2]


async def test_test_send_without_the_secret_is_a_clear_error(
    plugin: Any, emulator: RunningEmulator
) -> None:
    plugin.create("sale", "sending")

    result = await asyncio.to_thread(
        plugin,
        "test-send",
        "sale",
        "--chat-id=9001",
        env={"HERALD_TELEGRAM_API_URL": emulator.url},
    )

    assert result.returncode == 1
    assert result.stderr.strip() == (
        'Error: Secret "shop-bot" (spec.botRef of broadcast "sale") not found in namespace '
        f'"{plugin.namespace}"'
    )
    async with EmulatorClient(emulator.url) as telegram:
        assert await telegram.messages() == []


async def test_test_send_with_a_malformed_token_is_a_clear_error(
    plugin: Any, emulator: RunningEmulator
) -> None:
    _secret(plugin, "shop-bot", "not-a-token")
    plugin.create("sale", "sending")

    result = await asyncio.to_thread(
        plugin, "test-send", "sale", "--chat-id=9001", env={"HERALD_TELEGRAM_API_URL": emulator.url}
    )

    assert result.returncode == 1
    assert 'key "token" in Secret "shop-bot" is not a bot token' in result.stderr
    assert "not-a-token" not in result.stderr


def test_test_send_needs_a_chat(plugin: Any) -> None:
    plugin.create("sale", "sending")

    result = plugin("test-send", "sale")

    assert result.returncode == 2
    assert "Missing option '--chat-id'" in result.stderr


def test_test_send_of_an_unknown_broadcast_is_a_clear_error(plugin: Any) -> None:
    result = plugin("test-send", "nope", "--chat-id=9001")

    assert result.returncode == 1
    assert result.stderr.strip() == (
        f'Error: broadcast "nope" not found in namespace "{plugin.namespace}"'
    )
