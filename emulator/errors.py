"""The Bot API's error answer, shared by the emulator's state and its parameter checks."""

from __future__ import annotations

__all__ = ["ApiError", "bad_request"]


class ApiError(Exception):
    """A Bot API error answer; ``page`` set, an HTML page in its place (a proxy's)."""

    def __init__(
        self,
        status: int,
        description: str,
        retry_after: int | None = None,
        *,
        page: str | None = None,
    ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after
        self.page = page


def bad_request(description: str) -> ApiError:
    """A 400 worded as the Bot API words it: ``Bad Request: <description>``."""
    return ApiError(400, f"Bad Request: {description}")
