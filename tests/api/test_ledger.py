"""A Broadcast's ledger over HTTP: a real Broadcast on the API server (its uid the ledger's
key), ledger rows in Postgres as the senders leave them, readers with real tokens and Roles
on broadcasts/deliveries."""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from typing import Any

from herald.api.ledgers import PAGE_ROWS
from herald.core.deliveries import LEDGER_COLUMNS, LedgerRow
from herald.dev import samples

Herald = Any
Cluster = Any

# (chat id, state, reason, message id) of the ledger the tests read; chat ids out of order
# and negative (groups) too, since the rows come back in chat id order.
ROWS = [
    (-100500, "delivered", None, 11),
    (101, "delivered", None, 12),
    (102, "failed", "Bad Request: chat not found", None),
    (103, "blocked", "Forbidden: bot was blocked by the user", None),
    (104, "uncertain", "the sender stopped between send and record", None),
    (105, "pending", None, None),
    (106, "delivered", None, 13),
]


async def broadcast(cluster: Cluster, name: str) -> uuid.UUID:
    """A Broadcast on the API server, as a team applies it; its uid."""
    source = samples.objects()["sending"]
    manifest = {
        "apiVersion": source["apiVersion"],
        "kind": source["kind"],
        "metadata": {"name": name},
        "spec": source["spec"],
    }
    await cluster.k("apply", "--server-side", "--filename=-", input=json.dumps(manifest))
    body = json.loads(await cluster.k("get", "broadcast", name, "--output=json"))
    return uuid.UUID(body["metadata"]["uid"])


async def ledger(herald: Herald, uid: uuid.UUID, rows: list[tuple[Any, ...]] = ROWS) -> None:
    for chat_id, state, reason, message_id in rows:
        await herald.sql(
            "INSERT INTO deliveries (broadcast_uid, chat_id, state, reason, message_id, "
            "attempts, finished_at) VALUES ($1, $2, $3, $4, $5, 1, "
            "CASE WHEN $3 = 'pending' THEN NULL ELSE now() END)",
            uid,
            chat_id,
            state,
            reason,
            message_id,
        )


async def read(
    api: Herald,
    name: str,
    *,
    token: str | None,
    params: dict[str, Any] | list[tuple[str, str]] | None = None,
    accept: str | None = None,
    namespace: str | None = None,
    url: str | None = None,
) -> tuple[int, str, dict[str, str]]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    if accept is not None:
        headers["Accept"] = accept
    target = url or (
        f"{api.url}/v1/namespaces/{namespace or api.namespace}/broadcasts/{name}/deliveries"
    )
    async with api.client.get(target, headers=headers, params=params) as answer:
        return answer.status, await answer.text(), dict(answer.headers)


def lines(text: str) -> list[LedgerRow]:
    return [LedgerRow.model_validate_json(line) for line in text.splitlines()]


async def test_a_reader_gets_every_row_in_chat_id_order_as_json_lines(
    herald: Herald, cluster: Cluster
) -> None:
    uid = await broadcast(cluster, "black-friday")
    await ledger(herald, uid)
    # Another broadcast's rows are not this one's.
    await ledger(herald, uuid.uuid4(), [(101, "failed", "other", None)])
    token = await cluster.ledger_reader("analyst", broadcasts=["black-friday"])
    async with herald.running() as api:
        status, text, headers = await read(api, "black-friday", token=token)
    assert status == 200, text
    assert headers["Content-Type"] == "application/x-ndjson"
    assert "Link" not in headers
    rows = lines(text)
    assert [(r.chat_id, r.state, r.reason, r.message_id) for r in rows] == sorted(ROWS)
    first = json.loads(text.splitlines()[0])
    assert list(first) == list(LEDGER_COLUMNS)
    assert first["chatId"] == -100500
    assert first["finishedAt"].endswith("Z")


async def test_without_a_role_for_the_broadcasts_ledger_the_answer_is_403(
    herald: Herald, cluster: Cluster
) -> None:
    uid = await broadcast(cluster, "black-friday")
    await ledger(herald, uid)
    nobody = await cluster.ledger_reader("nobody", broadcasts=None)
    other = await cluster.ledger_reader("other", broadcasts=["another-one"])
    # A grant to send messages of a Bot is no grant to read ledgers.
    sender = await cluster.account("shop", bots=["black-friday"])
    async with herald.running() as api:
        for token, who in ((nobody, "nobody"), (other, "other"), (sender, "shop")):
            status, text, _ = await read(api, "black-friday", token=token)
            assert status == 403, who
            detail = json.loads(text)["detail"]
            assert detail.startswith(
                f"system:serviceaccount:{cluster.namespace}:{who} may not get "
                'broadcasts/deliveries.herald.dev "black-friday"'
            )
            assert "a Role granting verb get on broadcasts/deliveries" in detail
        status, text, _ = await read(api, "black-friday", token=None)
        assert status == 401


async def test_a_broadcast_that_does_not_exist_is_404_for_a_reader_granted_its_name(
    herald: Herald, cluster: Cluster
) -> None:
    token = await cluster.ledger_reader("analyst", broadcasts=["gone"])
    async with herald.running() as api:
        status, text, _ = await read(api, "gone", token=token)
    assert status == 404
    assert json.loads(text)["detail"].startswith(
        f'no Broadcast "gone" in namespace "{cluster.namespace}"'
    )


async def test_pages_of_a_limit_return_every_row_exactly_once(
    herald: Herald, cluster: Cluster
) -> None:
    uid = await broadcast(cluster, "black-friday")
    many = [(chat_id, "delivered", None, chat_id) for chat_id in range(1000, 1023)]
    await ledger(herald, uid, many)
    token = await cluster.ledger_reader("analyst", broadcasts=["black-friday"])
    seen: list[int] = []
    pages = 0
    async with herald.running() as api:
        params: Any = {"limit": "5"}
        url: str | None = None
        while True:
            status, text, headers = await read(
                api, "black-friday", token=token, params=params, url=url
            )
            assert status == 200, text
            pages += 1
            seen += [row.chat_id for row in lines(text)]
            link = headers.get("Link")
            if link is None:
                break
            match = re.fullmatch(r'<(/[^>]+)>; rel="next"', link)
            assert match is not None, link
            url, params = api.url + match.group(1), None
            assert "limit=5" in url
    assert seen == [chat_id for chat_id, *_ in many]
    assert pages == 5  # 5 + 5 + 5 + 5 + 3


async def test_the_whole_ledger_streams_across_pages_without_a_limit(
    herald: Herald, cluster: Cluster
) -> None:
    uid = await broadcast(cluster, "black-friday")
    count = PAGE_ROWS * 2 + 7
    await herald.sql(
        "INSERT INTO deliveries (broadcast_uid, chat_id, state) "
        "SELECT $1, g, 'pending' FROM generate_series(1, $2) AS g",
        uid,
        count,
    )
    token = await cluster.ledger_reader("analyst", broadcasts=["black-friday"])
    async with herald.running() as api:
        status, text, _ = await read(api, "black-friday", token=token)
    assert status == 200
    assert [row.chat_id for row in lines(text)] == list(range(1, count + 1))


async def test_a_cursor_of_another_broadcast_or_none_at_all_is_422(
    herald: Herald, cluster: Cluster
) -> None:
    uid = await broadcast(cluster, "black-friday")
    other = await broadcast(cluster, "cyber-monday")
    await ledger(herald, uid)
    await ledger(herald, other)
    token = await cluster.ledger_reader("analyst", broadcasts=["black-friday", "cyber-monday"])
    async with herald.running() as api:
        _, _, headers = await read(api, "cyber-monday", token=token, params={"limit": "2"})
        cursor = re.search(r"after=([^&>]+)", headers["Link"])
        assert cursor is not None
        for after, why in ((cursor.group(1), "is of another broadcast"), ("nope", "is not a")):
            status, text, _ = await read(api, "black-friday", token=token, params={"after": after})
            assert status == 422
            (problem,) = json.loads(text)["detail"]
            assert problem["loc"] == ["query", "after"]
            assert why in problem["msg"]


async def test_the_state_filter_repeats_or_takes_commas_and_refuses_unknown_states(
    herald: Herald, cluster: Cluster
) -> None:
    uid = await broadcast(cluster, "black-friday")
    await ledger(herald, uid)
    token = await cluster.ledger_reader("analyst", broadcasts=["black-friday"])
    async with herald.running() as api:
        repeated = [("state", "failed"), ("state", "uncertain")]
        for params in (repeated, {"state": "failed,uncertain"}, {"state": " failed, uncertain"}):
            status, text, _ = await read(api, "black-friday", token=token, params=params)
            assert status == 200, text
            assert [(r.chat_id, r.state) for r in lines(text)] == [
                (102, "failed"),
                (104, "uncertain"),
            ]
        status, text, _ = await read(
            api, "black-friday", token=token, params={"state": "failed,lost"}
        )
    assert status == 422
    (problem,) = json.loads(text)["detail"]
    assert problem["loc"] == ["query", "state"]
    assert problem["msg"].startswith("unknown state 'lost': a ledger row is one of pending,")


async def test_accept_text_csv_gets_csv_with_a_header_line(
    herald: Herald, cluster: Cluster
) -> None:
    uid = await broadcast(cluster, "black-friday")
    await ledger(herald, uid)
    token = await cluster.ledger_reader("analyst", broadcasts=["black-friday"])
    async with herald.running() as api:
        status, text, headers = await read(api, "black-friday", token=token, accept="text/csv")
        _, as_json, _ = await read(api, "black-friday", token=token)
    assert status == 200
    assert headers["Content-Type"] == "text/csv; charset=utf-8"
    table = list(csv.DictReader(io.StringIO(text)))
    assert tuple(table[0]) == LEDGER_COLUMNS
    assert [row["chatId"] for row in table] == [str(chat_id) for chat_id, *_ in sorted(ROWS)]
    failed = next(row for row in table if row["state"] == "failed")
    assert failed["reason"] == "Bad Request: chat not found"
    assert failed["messageId"] == ""
    # The same cells as the JSON form, empty for null.
    for row, line in zip(table, text_lines(as_json), strict=True):
        assert row == {key: "" if value is None else str(value) for key, value in line.items()}


def text_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]
