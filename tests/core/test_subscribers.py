"""CSV import: validated with line numbers, all-or-nothing, keeps blocked users blocked."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from herald.core.importing import BotChoiceError, BotName, import_subscribers, only_bot, parse_bot
from herald.core.subscribers import CsvError, Subscriber, is_bot_id, parse_csv
from herald.dev.kubectl import Kubectl
from herald.dev.systems import bot_manifest

HEADER = "chat_id,username,first_name,last_name,language_code,tags\n"


def test_a_good_file_parses() -> None:
    rows = parse_csv(HEADER + "1,@anna,Anna,K,RU,beta;vip\n2,,Bob,,,\n")
    assert rows == [
        Subscriber(1, "anna", "Anna", "K", "ru", ("beta", "vip")),
        Subscriber(2, None, "Bob", None, None, ()),
    ]


def test_only_chat_id_is_required() -> None:
    assert parse_csv("chat_id\n-1001\n") == [Subscriber(-1001)]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        pytest.param("", "line 1: the file is empty", id="empty"),
        pytest.param("username\nanna\n", "missing column(s) chat_id", id="no-chat-id-column"),
        pytest.param("chat_id,phone\n1,2\n", "unknown column(s) phone", id="unknown-column"),
        pytest.param(HEADER + "x,,,,,\n", "line 2: chat_id 'x' is not an integer", id="not-int"),
        pytest.param(HEADER + "0,,,,,\n", "line 2: chat_id 0 is out of range", id="zero"),
        pytest.param(HEADER + "99999999999999999999,,,,,\n", "line 2: chat_id", id="beyond-int64"),
        pytest.param(HEADER + "1,,,,english,\n", "line 2: language_code 'english'", id="lang"),
        pytest.param(HEADER + "1,,,,,Bad!Tag\n", "line 2: tag 'bad!tag'", id="tag"),
        pytest.param(HEADER + "1,,,,,\n1,,,,,\n", "line 3: chat_id 1 already on line 2", id="dup"),
        pytest.param(HEADER + "1,,,,,,extra\n", "line 2: more fields than columns", id="extra"),
        pytest.param(HEADER + "1,a\x00b,,,,\n", "line 2: a field contains a NUL", id="nul"),
    ],
)
def test_bad_files_name_the_line(text: str, problem: str) -> None:
    with pytest.raises(CsvError) as caught:
        parse_csv(text)
    assert any(problem in p for p in caught.value.problems), caught.value.problems


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(CsvError) as caught:
        parse_csv(HEADER + "x,,,,,\n2,,,,english,\n3,,,,,\n")
    assert [p.split(":")[0] for p in caught.value.problems] == ["line 2", "line 3"]


async def test_import_upserts_and_keeps_inactive_subscribers_inactive(database: str) -> None:
    connection = await asyncpg.connect(database)
    try:
        first = parse_csv(HEADER + "1,a,A,,en,\n2,b,B,,ru,x\n")
        await import_subscribers(connection, first, bot_id="111")
        await connection.execute("UPDATE subscribers SET is_active = false WHERE chat_id = 2")
        second = parse_csv(HEADER + "2,b2,B2,,ru,y\n3,c,C,,,\n")
        await import_subscribers(connection, second, bot_id="111")
        rows = await connection.fetch(
            "SELECT chat_id, username, is_active, tags FROM subscribers ORDER BY chat_id"
        )
    finally:
        await connection.close()
    assert [tuple(r) for r in rows] == [
        (1, "a", True, []),
        (2, "b2", False, ["y"]),
        (3, "c", True, []),
    ]


async def test_each_bot_imports_its_own_subscribers(database: str) -> None:
    connection = await asyncpg.connect(database)
    try:
        await import_subscribers(
            connection, parse_csv(HEADER + "1,a,A,,en,x\n2,b,B,,ru,\n"), bot_id="111"
        )
        await connection.execute(
            "UPDATE subscribers SET is_active = false WHERE bot_id = '111' AND chat_id = 2"
        )
        # The same users, to another bot: new rows of that bot, with their own language and
        # tags; user 2 blocked bot 111, not bot 222.
        await import_subscribers(
            connection, parse_csv(HEADER + "2,b,B,,de,y\n3,c,C,,,\n"), bot_id="222"
        )
        rows = await connection.fetch(
            "SELECT bot_id, chat_id, language_code, tags, is_active FROM subscribers "
            "ORDER BY bot_id, chat_id"
        )
        with pytest.raises(ValueError, match="not a bot id"):
            await import_subscribers(connection, [Subscriber(chat_id=9)], bot_id="bot")
    finally:
        await connection.close()
    assert [tuple(r) for r in rows] == [
        ("111", 1, "en", ["x"], True),
        ("111", 2, "ru", [], False),
        ("222", 2, "de", ["y"], True),
        ("222", 3, None, [], True),
    ]


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("1", True),
        ("123456789", True),
        ("9223372036854775807", True),
        ("9223372036854775808", False),
        ("0", False),
        ("012", False),
        ("-1", False),
        ("12\n", False),
        ("١٢", False),
        ("", False),
    ],
)
def test_bot_ids(text: str, valid: bool) -> None:
    assert is_bot_id(text) is valid


@pytest.mark.parametrize(
    ("given", "parsed"),
    [
        ("123456", "123456"),
        ("shop", BotName(None, "shop")),
        ("marketing/shop", BotName("marketing", "shop")),
    ],
)
def test_bot_forms(given: str, parsed: str | BotName) -> None:
    assert parse_bot(given) == parsed


@pytest.mark.parametrize("given", ["0123", "/shop", "a/b/c", "marketing/", ""])
def test_what_names_no_bot_is_refused(given: str) -> None:
    with pytest.raises(BotChoiceError):
        parse_bot(given)


@pytest.mark.parametrize(
    ("known", "outcome"),
    [
        (["111"], "111"),
        ([], "knows no bot yet"),
        (["111", "222"], r"several bots \(111, 222\)"),
    ],
)
def test_only_bot(known: list[str], outcome: str) -> None:
    if len(known) == 1:
        assert only_bot(known) == outcome
    else:
        with pytest.raises(BotChoiceError, match=outcome):
            only_bot(known)


def _cli(
    csv_path: Path, dsn: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "herald.dev.cli", "subscribers", "import", str(csv_path), *args],
        capture_output=True,
        text=True,
        # No Kubernetes unless a test gives one: the numeric form must not need it.
        env={
            **os.environ,
            "HERALD_DATABASE_URL": dsn,
            "KUBECONFIG": "/nonexistent",
            **(env or {}),
        },
        timeout=60,
        check=False,
    )


async def _rows_by_bot(dsn: str) -> dict[str, int]:
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "SELECT bot_id, count(*) AS n FROM subscribers GROUP BY bot_id ORDER BY bot_id"
        )
    finally:
        await connection.close()
    return {row["bot_id"]: row["n"] for row in rows}


async def test_cli_imports_for_the_bot_id_given(database: str, tmp_path: Path) -> None:
    users = tmp_path / "users.csv"
    users.write_text(HEADER + "1,,,,,\n2,,,,,\n")
    nobody = await asyncio.to_thread(_cli, users, database)
    assert nobody.returncode == 1
    assert "knows no bot yet" in nobody.stderr
    assert "--bot NAME or --bot ID" in nobody.stderr

    first = await asyncio.to_thread(_cli, users, database, "--bot", "111")
    assert first.returncode == 0, first.stderr
    assert "imported 2 subscribers of bot 111" in first.stdout
    # One bot known: it is the default.
    again = await asyncio.to_thread(_cli, users, database)
    assert again.returncode == 0, again.stderr
    assert "of bot 111" in again.stdout
    second = await asyncio.to_thread(_cli, users, database, "--bot", "222")
    assert second.returncode == 0, second.stderr
    ambiguous = await asyncio.to_thread(_cli, users, database)
    assert ambiguous.returncode == 1
    assert "several bots (111, 222)" in ambiguous.stderr
    not_an_id = await asyncio.to_thread(_cli, users, database, "--bot", "0111")
    assert not_an_id.returncode == 1
    assert "not a bot id" in not_an_id.stderr
    assert await _rows_by_bot(database) == {"111": 2, "222": 2}


@pytest.mark.controlplane
async def test_cli_imports_for_a_bot_by_name(
    database: str, tmp_path: Path, kubectl: Kubectl
) -> None:
    namespace = kubectl.namespace
    assert namespace is not None
    for name, status in (("shop", {"botId": 777000}), ("fresh", None)):
        body = json.dumps(bot_manifest(name, f"{name}-token"))
        await asyncio.to_thread(kubectl, "create", "-f", "-", input=body)
        if status is not None:
            patch = json.dumps({"status": status})
            await asyncio.to_thread(
                kubectl, "patch", "bot", name, "--subresource=status", "--type=merge", "-p", patch
            )
    # A kubeconfig whose context is the test's namespace: NAME is looked up there.
    current = tmp_path / "kubeconfig"
    current.write_text(kubectl.kubeconfig.read_text())
    await asyncio.to_thread(
        Kubectl(current), "config", "set-context", "--current", f"--namespace={namespace}"
    )
    users = tmp_path / "users.csv"
    users.write_text(HEADER + "1,,,,,\n")
    kube = {"KUBECONFIG": str(current)}

    by_name = await asyncio.to_thread(_cli, users, database, "--bot", "shop", env=kube)
    assert by_name.returncode == 0, by_name.stderr
    assert "of bot 777000" in by_name.stdout
    qualified = await asyncio.to_thread(
        _cli,
        users,
        database,
        "--bot",
        f"{namespace}/shop",
        env={"KUBECONFIG": str(kubectl.kubeconfig)},
    )
    assert qualified.returncode == 0, qualified.stderr
    fresh = await asyncio.to_thread(_cli, users, database, "--bot", "fresh", env=kube)
    assert fresh.returncode == 1
    assert f'Bot "{namespace}/fresh" has no status.botId yet' in fresh.stderr
    absent = await asyncio.to_thread(_cli, users, database, "--bot", "absent", env=kube)
    assert absent.returncode == 1
    assert f'no Bot "absent" in namespace {namespace}' in absent.stderr
    no_kube = await asyncio.to_thread(_cli, users, database, "--bot", "shop")
    assert no_kube.returncode == 1
    assert "give the numeric bot id instead" in no_kube.stderr
    assert await _rows_by_bot(database) == {"777000": 1}


async def test_cli_imports_all_or_nothing(database: str, tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text(HEADER + "".join(f"{i},u{i},F{i},,en,\n" for i in range(1, 1001)))
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "5000,,,,,\n5001,,,,xx-,\n")

    ok = _cli(good, database, "--bot", "111")
    assert ok.returncode == 0, ok.stderr
    assert "imported 1000 subscribers" in ok.stdout
    refused = _cli(bad, database, "--bot", "111")
    assert refused.returncode == 1
    assert "line 3: language_code 'xx-'" in refused.stderr
    assert "nothing imported" in refused.stderr

    connection = await asyncpg.connect(database)
    try:
        assert await connection.fetchval("SELECT count(*) FROM subscribers") == 1000
    finally:
        await connection.close()
