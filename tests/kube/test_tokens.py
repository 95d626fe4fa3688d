"""What a bot token Secret's data says under one key."""

from __future__ import annotations

import base64

import pytest

from herald.kube.tokens import Found, KeyNotFound, Malformed, SecretNotFound, TokenRead, token_in


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_a_token_is_found_trimmed_with_its_bot_id() -> None:
    read = token_in({"token": b64("123:abc\n")}, "token")
    assert isinstance(read, Found)
    assert read.token.get_secret_value() == "123:abc"
    assert read.bot_id == "123"
    assert "abc" not in repr(read)  # the secret half never shows in a log line


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(None, SecretNotFound(), id="no-secret"),
        pytest.param({}, KeyNotFound(), id="empty-secret"),
        pytest.param({"other": b64("123:abc")}, KeyNotFound(), id="no-key"),
        pytest.param({"token": b64("no-colon")}, Malformed(), id="no-colon"),
        pytest.param({"token": b64("abc:def")}, Malformed(), id="id-not-digits"),
        pytest.param({"token": b64(":def")}, Malformed(), id="no-id"),
        pytest.param({"token": "%%%"}, Malformed(), id="not-base64"),
        pytest.param({"token": "/w=="}, Malformed(), id="not-utf8"),
    ],
)
def test_what_stands_in_the_way(data: dict[str, str] | None, expected: TokenRead) -> None:
    assert token_in(data, "token") == expected
