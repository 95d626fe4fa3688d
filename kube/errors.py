"""The one error the Kubernetes clients of :mod:`herald.kube` raise, with what the API server
said in words a person can act on."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import urllib3.exceptions
from kubernetes.client.exceptions import ApiException

__all__ = [
    "ConfigError",
    "Conflict",
    "KubeError",
    "NotFound",
    "Unreachable",
    "api_message",
    "error_of",
    "translated",
]


class KubeError(Exception):
    """The API server refused a call, or gave no answer; ``str()`` is the readable message.

    ``status`` and ``reason`` are the HTTP status and its phrase (None: no answer).
    """

    def __init__(self, message: str, *, status: int | None = None, reason: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.reason = reason


class NotFound(KubeError):
    """404: no such object."""


class Conflict(KubeError):
    """409: the object exists already, or changed under the call."""


class Unreachable(KubeError):
    """No answer: the connection failed or the request timed out."""


class ConfigError(KubeError):
    """Neither the pod's ServiceAccount nor a kubeconfig gave a configuration."""


def api_message(exc: ApiException) -> str:
    """The API server's own words (its Status message), without request details."""
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        body = {}
    message = body.get("message") if isinstance(body, dict) else None
    return str(message or exc.reason or f"HTTP {exc.status}")


_BY_STATUS: dict[int, type[KubeError]] = {404: NotFound, 409: Conflict}


def error_of(exc: ApiException) -> KubeError:
    """The :class:`KubeError` (or subclass, by status) an API server refusal stands for."""
    kind = _BY_STATUS.get(exc.status, KubeError)
    return kind(api_message(exc), status=exc.status, reason=exc.reason)


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """The client's exceptions inside the block as :class:`KubeError`, the original chained."""
    try:
        yield
    except ApiException as exc:
        raise error_of(exc) from exc
    except urllib3.exceptions.HTTPError as exc:
        raise Unreachable(str(exc)) from exc
