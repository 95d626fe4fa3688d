"""``kubectl broadcast ledger``: a Broadcast's ledger streamed from herald-api
(``GET .../broadcasts/{name}/deliveries``, docs/transactional.md), written out as it comes.

herald-api is found at ``--api-url`` (or ``HERALD_API_URL``), else at its Service in the
namespace Herald is installed in (``--api-namespace``, ``HERALD_API_NAMESPACE``, default
``herald``), which resolves inside the cluster; from outside, a ``kubectl port-forward`` and
``HERALD_API_URL`` reach it. herald-api authenticates the kubeconfig user's bearer token
(or ``--token``, ``HERALD_API_TOKEN``) with TokenReview, as the API server would.

Every failure is a :class:`~herald.cli.kubeapi.PluginError` that says what to do.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from typing import BinaryIO

from herald.cli.kubeapi import PluginError
from herald.core.deliveries import CSV, NDJSON, LedgerRow

__all__ = ["ledger_url", "stream"]

_CHUNK = 64 * 1024


def ledger_url(api_url: str, *, namespace: str, name: str, states: Sequence[str]) -> str:
    quote = urllib.parse.quote
    path = f"/v1/namespaces/{quote(namespace, safe='')}/broadcasts/{quote(name, safe='')}"
    query = urllib.parse.urlencode([("state", state) for state in states])
    return f"{api_url.rstrip('/')}{path}/deliveries" + (f"?{query}" if query else "")


def _refusal(error: urllib.error.HTTPError, api_url: str) -> PluginError:
    try:
        detail = json.loads(error.read() or b"{}").get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, list):
        detail = "; ".join(str(problem.get("msg", problem)) for problem in detail)
    said = detail or error.reason
    if error.code == 403:
        return PluginError(f"forbidden: {said}")
    if error.code == 401:
        return PluginError(
            f"herald-api at {api_url} does not accept the token: {said} (the kubeconfig "
            "user's token, or --token)"
        )
    return PluginError(f"herald-api at {api_url} answered {error.code}: {said}")


def stream(
    api_url: str,
    *,
    token: str,
    namespace: str,
    name: str,
    states: Sequence[str],
    as_csv: bool,
    timeout: float,
) -> Iterator[bytes]:
    """The answer's bytes as they arrive (CSV, or JSON lines); the request is made, and
    refused or not, before this returns."""
    request = urllib.request.Request(  # noqa: S310 - the URL is the user's herald-api
        ledger_url(api_url, namespace=namespace, name=name, states=states),
        headers={"Authorization": f"Bearer {token}", "Accept": CSV if as_csv else NDJSON},
    )
    try:
        answer: BinaryIO = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310
    except urllib.error.HTTPError as exc:
        raise _refusal(exc, api_url) from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise PluginError(
            f"cannot reach herald-api at {api_url}: {reason} (from outside the cluster: "
            "kubectl port-forward -n herald svc/<release>-herald-api 8080:8080, then "
            "HERALD_API_URL=http://127.0.0.1:8080)"
        ) from exc
    return _chunks(answer, api_url)


def _chunks(answer: BinaryIO, api_url: str) -> Iterator[bytes]:
    with answer:
        try:
            while chunk := answer.read1(_CHUNK):  # type: ignore[attr-defined]
                yield chunk
        except (http.client.HTTPException, OSError) as exc:
            raise PluginError(
                f"the ledger from herald-api at {api_url} broke off before its end: {exc!r}; "
                "what was printed is a part of it"
            ) from exc


def rows(chunks: Iterator[bytes]) -> Iterator[LedgerRow]:
    """The rows of a JSON lines stream, each as soon as its line is whole."""
    rest = b""
    for chunk in chunks:
        *whole, rest = (rest + chunk).split(b"\n")
        for line in whole:
            if line:
                yield LedgerRow.model_validate_json(line)
    if rest.strip():
        yield LedgerRow.model_validate_json(rest)
