"""Configuration of herald-api, read from ``HERALD_API_*`` plus the shared NATS, database and
token key groups of :mod:`herald.core.settings`.

The Kubernetes API server (for TokenReview and SubjectAccessReview) is found as every
component finds it: the pod's ServiceAccount, else the kubeconfig of ``$KUBECONFIG`` or
``~/.kube/config`` (:mod:`herald.kube.connecting`).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from herald.core.settings import DatabaseSettings, NatsSettings, TokenKeySettings

__all__ = ["MAX_WAIT_SECONDS", "ApiSettings", "Settings"]

# The longest `?wait=` of the HTTP contract: long enough for a send at Telegram's pace
# behind a short queue, short enough for an ordinary HTTP client's time-out.
MAX_WAIT_SECONDS = 30.0


class ApiSettings(BaseSettings):
    """How one herald-api process serves."""

    model_config = SettingsConfigDict(env_prefix="HERALD_API_", frozen=True)

    host: str = Field(
        default="0.0.0.0",  # noqa: S104 - a container listens on all its interfaces
        description="Address the HTTP server binds; all interfaces, as in a container.",
    )
    port: int = Field(
        default=8080,
        ge=0,
        le=65535,
        description="Port of the API, its OpenAPI document (/openapi.json, /docs), /metrics, "
        "/livez and /readyz; 8080 needs no privileges. 0: any free port (tests).",
    )
    idempotency_hours: float = Field(
        default=24.0,
        gt=0,
        description="How long an Idempotency-Key is kept: a finished message (and its key) "
        "is deleted this long after it was accepted, so a retry within a day is always "
        "recognised. Messages not yet finished are never deleted.",
    )
    auth_cache_seconds: float = Field(
        default=10.0,
        ge=0,
        description="How long a TokenReview or SubjectAccessReview answer, yes or no, is "
        "reused for the same token; 0 asks the API server on every request. Ten seconds "
        "spare it a burst's reviews, and a revoked token or Role stops working soon after.",
    )
    queue_bound: int = Field(
        default=10_000,
        ge=1,
        description="Most open (pending or being sent) messages per bot; a POST over it is "
        "answered 429 with Retry-After. 10,000 is about five minutes of the bot's 30 msg/s.",
    )
    max_body_bytes: int = Field(
        default=65_536,
        ge=1024,
        description="Largest request body taken; a larger one is refused with 413 before it "
        "is read. A message of 4096 characters with buttons is far below 64 KiB.",
    )
    callback_attempts: int = Field(
        default=8,
        ge=1,
        description="How many times an outcome callback is POSTed before its callback_state "
        "is failed; with callback_backoff_seconds of 5 the last try is about ten minutes "
        "after the first.",
    )
    callback_backoff_seconds: float = Field(
        default=5.0,
        gt=0,
        description="Wait before the second attempt of a callback; it doubles after each "
        "failed attempt (5, 10, 20 ... seconds), up to an hour.",
    )
    callback_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Longest wait for a callback receiver's answer; a slower one counts as "
        "a failed attempt.",
    )
    kubernetes_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        description="Longest wait for the API server's TokenReview or SubjectAccessReview; "
        "without an answer the request is refused with 503, and nothing is kept.",
    )
    republish_seconds: float = Field(
        default=5.0,
        gt=0,
        description="A message still pending this long after it was accepted, whose queueing "
        "on NATS may have failed, is queued again (the stream drops a message id it already "
        "has). Above a publish's round trip, well below the stream's 15-minute dedupe window.",
    )
    traffic_seconds: float = Field(
        default=5.0,
        gt=0,
        description="Least seconds between two writes of a bot's traffic record (KV "
        "traffic.<bot id>), which keeps a sender holding the bot; far below the senders' "
        "and operator's window of 300 s.",
    )
    shutdown_seconds: float = Field(
        default=20.0,
        gt=0,
        description="After SIGTERM, how long requests in progress may finish (a ?wait= answers "
        "at once with 202); below Kubernetes' default terminationGracePeriodSeconds of 30.",
    )


class Settings(BaseModel):
    """Everything a herald-api process reads from its environment, grouped."""

    model_config = ConfigDict(frozen=True)

    api: ApiSettings = Field(default_factory=ApiSettings)
    nats: NatsSettings = Field(default_factory=NatsSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    tokens: TokenKeySettings = Field(default_factory=TokenKeySettings)
