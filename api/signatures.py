"""The signature of an outcome callback, and how long to wait before the next attempt. Pure.

``Herald-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">``, keyed with the
Bot's callback secret (``spec.callbacks.secretRef``). The timestamp is inside what is signed,
so a receiver that refuses old timestamps cannot be fed a recorded callback again later;
``v1`` names the scheme, so another can be added beside it without breaking receivers.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["HEADER", "backoff", "sign"]

HEADER = "Herald-Signature"
# However many attempts are configured, the wait between two stays within an hour.
_MAX_BACKOFF_SECONDS = 3600.0


def sign(secret: str, body: bytes, *, at: int) -> str:
    """The header's value for ``body`` sent at ``at`` (unix seconds)."""
    digest = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


def backoff(attempts: int, *, first: float) -> float:
    """Seconds before the next attempt, after ``attempts`` (>= 1) failed: ``first``, then
    doubling."""
    return min(first * 2.0 ** (attempts - 1), _MAX_BACKOFF_SECONDS)
