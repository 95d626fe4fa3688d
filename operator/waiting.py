"""Bounded waits on the services a reconcile depends on: Postgres, NATS, the API server.

Every wait of the operator runs inside :func:`waiting_for`, which bounds it and turns a
time-out or the service's own error into :class:`Unavailable`, carrying the
:class:`~herald.operator.planning.Wait` that the status reports ("waiting for Postgres").
The reconcile is then retried by the next timer run; nothing waits for ever, so no
per-broadcast lock or pool connection can be held for ever either.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import nats.errors
import urllib3.exceptions
from kubernetes.client.exceptions import ApiException

from herald.kube.errors import KubeError
from herald.operator.planning import Reason, Wait
from herald.operator.settings import OperatorSettings

__all__ = ["Service", "Timeouts", "Unavailable", "waiting_for"]


class Service(enum.StrEnum):
    """What the operator waits on, as a status message names it."""

    DATABASE = "Postgres"
    NATS = "NATS"
    KUBERNETES = "the Kubernetes API server"


_REASONS = {
    Service.DATABASE: Reason.WAITING_FOR_DATABASE,
    Service.NATS: Reason.WAITING_FOR_NATS,
    Service.KUBERNETES: Reason.WAITING_FOR_KUBERNETES,
}

# The errors each service's client raises when the service is down, restarting, refusing
# or overloaded: retryable, so they become a wait like a time-out does.
_ERRORS: dict[Service, tuple[type[BaseException], ...]] = {
    Service.DATABASE: (asyncpg.PostgresError, asyncpg.InterfaceError, OSError),
    Service.NATS: (nats.errors.Error, OSError),
    Service.KUBERNETES: (KubeError, ApiException, urllib3.exceptions.HTTPError, OSError),
}


# How much of an error's own message a condition carries.
_DETAIL_MAX_LENGTH = 200


@dataclass(frozen=True, kw_only=True)
class Timeouts:
    """How long one wait on each service may take, in seconds."""

    database: float
    nats: float
    kubernetes: float
    materialise: float  # the one long statement: writing a whole audience

    @classmethod
    def of(cls, settings: OperatorSettings) -> Timeouts:
        return cls(
            database=settings.database_timeout_seconds,
            nats=settings.nats_timeout_seconds,
            kubernetes=settings.kubernetes_timeout_seconds,
            materialise=settings.materialise_timeout_seconds,
        )


class Unavailable(Exception):
    """A service did not answer within its time-out, or failed; retry later."""

    def __init__(self, wait: Wait) -> None:
        super().__init__(wait.message)
        self.wait = wait


@contextlib.asynccontextmanager
async def waiting_for(service: Service, seconds: float, what: str) -> AsyncIterator[None]:
    """Bound the block to ``seconds``; its time-out or ``service``'s error becomes
    :class:`Unavailable` saying ``what`` was waited for."""
    reason = _REASONS[service]
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError as exc:
        message = f"Waiting for {service} ({what}): no answer within {seconds:g} s; retrying."
        raise Unavailable(Wait(reason=reason, message=message)) from exc
    except _ERRORS[service] as exc:
        # herald.kube's error names the client's own, which says more here (MaxRetryError).
        cause = exc.__cause__ if isinstance(exc, KubeError) and exc.__cause__ else exc
        error = type(cause).__name__
        if isinstance(cause, ApiException):
            # Not str(cause): it carries the response's headers and body.
            error = f"{error} {cause.status} {cause.reason}"
        elif str(cause) and not isinstance(cause, KubeError | urllib3.exceptions.HTTPError):
            error = f"{error}: {str(cause)[:_DETAIL_MAX_LENGTH]}"
        message = f"Waiting for {service} ({what}): {error}; retrying."
        raise Unavailable(Wait(reason=reason, message=message)) from exc
