"""The one error herald.kube raises: its class by status, its message in the API server's
own words."""

from __future__ import annotations

import json

import pytest
import urllib3.exceptions
from kubernetes.client.exceptions import ApiException

from herald.kube.errors import (
    Conflict,
    KubeError,
    NotFound,
    Unreachable,
    api_message,
    error_of,
    translated,
)


def refusal(status: int, reason: str | None, body: object = None) -> ApiException:
    exc = ApiException(status=status, reason=reason)
    exc.body = body if body is None or isinstance(body, str) else json.dumps(body)
    return exc


@pytest.mark.parametrize(
    ("exc", "message"),
    [
        pytest.param(
            refusal(404, "Not Found", {"kind": "Status", "message": 'broadcasts "x" not found'}),
            'broadcasts "x" not found',
            id="status-message",
        ),
        pytest.param(
            refusal(503, "Service Unavailable", "<html>"), "Service Unavailable", id="html"
        ),
        pytest.param(refusal(500, "Internal", ["a list"]), "Internal", id="not-an-object"),
        pytest.param(refusal(500, "Internal", {"message": ""}), "Internal", id="empty-message"),
        pytest.param(refusal(502, None), "HTTP 502", id="nothing-said"),
    ],
)
def test_api_message(exc: ApiException, message: str) -> None:
    assert api_message(exc) == message


@pytest.mark.parametrize(
    ("status", "kind"),
    [(404, NotFound), (409, Conflict), (403, KubeError), (422, KubeError), (500, KubeError)],
)
def test_error_of_picks_the_class_by_status(status: int, kind: type[KubeError]) -> None:
    error = error_of(refusal(status, "Why", {"message": "what the server said"}))
    assert type(error) is kind
    assert (str(error), error.status, error.reason) == ("what the server said", status, "Why")


def test_translated_chains_the_clients_own_error() -> None:
    original = refusal(409, "Conflict", {"message": "already exists"})
    with pytest.raises(Conflict, match="already exists") as caught, translated():
        raise original
    assert caught.value.__cause__ is original


def test_no_answer_is_unreachable() -> None:
    original = urllib3.exceptions.MaxRetryError(None, "/apis", "Connection refused")  # type: ignore[arg-type]
    with pytest.raises(Unreachable) as caught, translated():
        raise original
    assert caught.value.status is None
    assert "Connection refused" in str(caught.value)
    assert caught.value.__cause__ is original


def test_anything_else_passes_through() -> None:
    with pytest.raises(ValueError, match="not the client's"), translated():
        raise ValueError("not the client's")
