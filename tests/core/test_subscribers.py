"""CSV import: validated with line numbers, all-or-nothing, keeps blocked users blocked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from herald.core.importing import import_subscribers
from herald.core.subscribers import CsvError, Subscriber, parse_csv

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
        await import_subscribers(connection, parse_csv(HEADER + "1,a,A,,en,\n2,b,B,,ru,x\n"))
        await connection.execute("UPDATE subscribers SET is_active = false WHERE chat_id = 2")
        await import_subscribers(connection, parse_csv(HEADER + "2,b2,B2,,ru,y\n3,c,C,,,\n"))
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


def _cli(csv_path: Path, dsn: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "herald.dev.cli", "subscribers", "import", str(csv_path)],
        capture_output=True,
        text=True,
        env={**os.environ, "HERALD_DATABASE_URL": dsn},
        timeout=60,
        check=False,
    )


async def test_cli_imports_all_or_nothing(database: str, tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text(HEADER + "".join(f"{i},u{i},F{i},,en,\n" for i in range(1, 1001)))
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "5000,,,,,\n5001,,,,xx-,\n")

    ok = _cli(good, database)
    assert ok.returncode == 0, ok.stderr
    assert "imported 1000 subscribers" in ok.stdout
    refused = _cli(bad, database)
    assert refused.returncode == 1
    assert "line 3: language_code 'xx-'" in refused.stderr
    assert "nothing imported" in refused.stderr

    connection = await asyncpg.connect(database)
    try:
        assert await connection.fetchval("SELECT count(*) FROM subscribers") == 1000
    finally:
        await connection.close()
