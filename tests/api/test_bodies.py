"""Bad requests are refused readably, each problem with its field path; none leaves a row.
And the OpenAPI document describes the one model the CRD's content is."""

from __future__ import annotations

import json
from typing import Any

import pytest

Herald = Any  # the fixtures' classes live in conftest.py
Cluster = Any

GOOD = {"chatId": 4242, "content": {"text": "Your order has shipped"}}


@pytest.fixture
async def api(herald: Herald, cluster: Cluster) -> Any:
    await herald.put_bot("shop-bot")
    token = await cluster.account("shop", bots=["shop-bot"])
    async with herald.running(max_body_bytes=8192) as running:
        running.token = token
        yield running


@pytest.mark.parametrize(
    ("body", "loc", "words"),
    [
        pytest.param(
            {"chatId": 4242, "content": {"text": "x" * 4097}},
            ["body", "content", "text"],
            "at most 4096 characters",
            id="text-over-4096",
        ),
        pytest.param(
            {"chatId": 4242, "content": {"text": "hi", "parseMode": "Markdown"}},
            ["body", "content", "parseMode"],
            "'HTML', 'MarkdownV2' or 'None'",
            id="unknown-parse-mode",
        ),
        pytest.param(
            {"chatId": 0, "content": {"text": "hi"}},
            ["body", "chatId"],
            "chatId must not be 0",
            id="chat-id-0",
        ),
        pytest.param(
            {"content": {"text": "hi"}},
            ["body", "chatId"],
            "Field required",
            id="no-chat-id",
        ),
        pytest.param(
            {"chatId": 4242, "content": {}},
            ["body", "content"],
            "content needs a message",
            id="no-message-kind",
        ),
        pytest.param(
            {"chatId": 4242, "content": {"text": "hi"}, "colour": "red"},
            ["body", "colour"],
            "Extra inputs are not permitted",
            id="unknown-field",
        ),
        pytest.param(
            {"chatId": 4242, "content": {"text": "hi"}, "deadline": "tomorrow"},
            ["body", "deadline"],
            "datetime",
            id="deadline-not-rfc3339",
        ),
        pytest.param(
            '{"chatId": 4242,',
            ["body", 16],
            "JSON",
            id="not-json",
        ),
    ],
)
async def test_a_body_that_is_no_message_is_422_with_the_field_path(
    api: Any, body: Any, loc: list[Any], words: str
) -> None:
    status, answer, _ = await api.post("shop-bot", body, token=api.token)
    assert status == 422
    problems = answer["detail"]
    assert any(p["loc"] == loc and words in p["msg"] for p in problems), problems
    assert all("input" not in p for p in problems)  # the body is not echoed back
    assert await api.rows() == []


async def test_a_body_over_the_size_limit_is_413_before_it_is_read(api: Any) -> None:
    big = json.dumps({"chatId": 4242, "content": {"text": "hi"}, "pad": "x" * 9000})
    status, answer, _ = await api.post("shop-bot", big, token=api.token)
    assert status == 413
    [problem] = answer["detail"]
    assert problem["loc"] == ["body"]
    assert "more than the 8192 bytes taken (HERALD_API_MAX_BODY_BYTES)" in problem["msg"]
    assert await api.rows() == []


@pytest.mark.parametrize(
    ("key", "words"),
    [
        pytest.param(None, "the Idempotency-Key header is required", id="missing"),
        pytest.param("k" * 256, "at most 255 characters", id="too-long"),
        pytest.param("", "must not be empty", id="empty"),
    ],
)
async def test_a_missing_or_bad_idempotency_key_is_400(
    api: Any, key: str | None, words: str
) -> None:
    status, answer, _ = await api.post("shop-bot", GOOD, token=api.token, key=key)
    assert status == 400
    [problem] = answer["detail"]
    assert problem["loc"] == ["header", "Idempotency-Key"]
    assert words in problem["msg"]
    assert await api.rows() == []


async def test_a_key_of_255_characters_is_taken(api: Any) -> None:
    status, _, _ = await api.post("shop-bot", GOOD, token=api.token, key="k" * 255)
    assert status == 202


async def test_a_wait_over_30_seconds_is_refused(api: Any) -> None:
    status, answer, _ = await api.post("shop-bot", GOOD, token=api.token, wait=31)
    assert status == 422
    assert answer["detail"][0]["loc"] == ["query", "wait"]


async def test_the_same_key_with_another_body_is_422_and_says_why(api: Any) -> None:
    status, first, _ = await api.post("shop-bot", GOOD, token=api.token, key="order-1")
    assert status == 202
    # The same message spelled otherwise is the same message.
    same = {"content": {"parseMode": "HTML", "text": "Your order has shipped"}, "chatId": 4242}
    status, again, _ = await api.post("shop-bot", same, token=api.token, key="order-1")
    assert status == 202
    assert again["id"] == first["id"]

    other = {"chatId": 4242, "content": {"text": "Your order was cancelled"}}
    status, answer, _ = await api.post("shop-bot", other, token=api.token, key="order-1")
    assert status == 422
    assert answer["detail"] == (
        f"the Idempotency-Key 'order-1' was used for another message ({first['id']}) with "
        "a different body: a new message needs a new key"
    )
    assert len(await api.rows()) == 1


async def test_a_callback_url_needs_the_bots_callback_secret(api: Any) -> None:
    body = {**GOOD, "callbackUrl": "https://shop.example/herald"}
    status, answer, _ = await api.post("shop-bot", body, token=api.token)
    assert status == 422
    [problem] = answer["detail"]
    assert problem["loc"] == ["body", "callbackUrl"]
    assert "spec.callbacks.secretRef" in problem["msg"]
    assert await api.rows() == []


async def test_the_openapi_document_describes_the_contract(api: Any) -> None:
    status, text = await api.text("/openapi.json")
    assert status == 200
    document = json.loads(text)
    paths = document["paths"]
    post = paths["/v1/namespaces/{namespace}/bots/{bot}/messages"]["post"]
    assert {"202", "200", "400", "401", "403", "404", "413", "422", "429"} <= set(post["responses"])
    key = next(p for p in post["parameters"] if p["name"] == "Idempotency-Key")
    assert key["required"] is True
    assert key["schema"]["maxLength"] == 255
    assert "get" in paths["/v1/namespaces/{namespace}/bots/{bot}/messages/{message_id}"]
    schemas = document["components"]["schemas"]
    # The Broadcast's content model, with its limits and its rules.
    assert schemas["Content"]["properties"]["text"]["anyOf"][0]["maxLength"] == 4096
    assert "x-kubernetes-validations" in schemas["Content"]
    assert set(schemas["MessageRequest"]["properties"]) == {
        "chatId",
        "content",
        "deadline",
        "callbackUrl",
    }
    assert document["components"]["securitySchemes"]["KubernetesToken"]["scheme"] == "bearer"
    status, page = await api.text("/docs")
    assert status == 200
    assert "swagger" in page.lower()
