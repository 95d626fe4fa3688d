"""The callback signature and backoff, pure."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from herald.api.signatures import backoff, sign


def test_the_signature_is_an_hmac_of_the_timestamp_and_the_body() -> None:
    body = b'{"id":"x","state":"delivered"}'
    header = sign("s3cret", body, at=1_700_000_000)
    digest = hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={digest}"
    assert sign("s3cret", body, at=1_700_000_001) != header
    assert sign("other", body, at=1_700_000_000) != header


@pytest.mark.parametrize(
    ("attempts", "seconds"), [(1, 5.0), (2, 10.0), (3, 20.0), (7, 320.0), (20, 3600.0)]
)
def test_backoff_doubles_up_to_an_hour(attempts: int, seconds: float) -> None:
    assert backoff(attempts, first=5.0) == seconds
