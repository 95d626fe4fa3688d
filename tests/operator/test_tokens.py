"""Bot tokens read from a Secret's data, and the cache that lets Broadcasts share one read."""

from __future__ import annotations

import base64

import pytest

from herald.operator.planning import TokenState
from herald.operator.tokens import SecretCache, token_of


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("data", "state", "token"),
    [
        pytest.param({"token": b64("123:abc\n")}, TokenState.FOUND, "123:abc", id="found-trimmed"),
        pytest.param(None, TokenState.SECRET_NOT_FOUND, None, id="no-secret"),
        pytest.param({"other": b64("123:abc")}, TokenState.KEY_NOT_FOUND, None, id="no-key"),
        pytest.param({"token": b64("no-colon")}, TokenState.MALFORMED, None, id="not-a-token"),
        pytest.param({"token": "%%%"}, TokenState.MALFORMED, None, id="not-base64"),
        pytest.param({"token": "/w=="}, TokenState.MALFORMED, None, id="not-utf8"),
    ],
)
def test_token_of(data: dict[str, str] | None, state: TokenState, token: str | None) -> None:
    found, secret = token_of(data, "token")
    assert found is state
    assert (secret.get_secret_value() if secret else None) == token


def test_a_read_is_shared_until_it_is_older_than_the_ttl() -> None:
    cache = SecretCache(ttl=5)
    assert cache.get("ns", "bot", now=0) == (False, None)
    cache.put("ns", "bot", {"token": "x"}, now=0)
    assert cache.get("ns", "bot", now=4.9) == (True, {"token": "x"})
    assert cache.get("other", "bot", now=1) == (False, None)
    assert cache.get("ns", "bot", now=5) == (False, None)


def test_a_missing_secret_is_remembered_as_missing() -> None:
    cache = SecretCache(ttl=5)
    cache.put("ns", "bot", None, now=0)
    assert cache.get("ns", "bot", now=1) == (True, None)


def test_stale_entries_are_dropped_as_the_cache_grows() -> None:
    cache = SecretCache(ttl=5)
    for i in range(63):
        cache.put("ns", f"old-{i}", {}, now=0)
    cache.put("ns", "new", {}, now=10)
    assert cache.get("ns", "new", now=10) == (True, {})
    assert len(cache._entries) == 1
