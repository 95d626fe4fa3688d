"""What the Kubernetes API server said, for the components that talk to it directly."""

from __future__ import annotations

import json

from kubernetes.client.exceptions import ApiException

__all__ = ["api_message"]


def api_message(exc: ApiException) -> str:
    """The API server's own words (its Status message), without request details."""
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        body = {}
    message = body.get("message") if isinstance(body, dict) else None
    return str(message or exc.reason or f"HTTP {exc.status}")
