"""Sizing the sender Deployment: a pure rule, and the patch of its scale subresource.

One sender replica holds the lease of a bot and serves all of that bot's active broadcasts
(the bot's rate limit is per bot, so a second replica for the same bot would only wait), so
the useful number of replicas is the number of distinct bots with a broadcast sending now.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from kubernetes import client
from kubernetes.client.exceptions import ApiException

__all__ = ["FIELD_MANAGER", "ScaleDownWindow", "ScaleResult", "desired_replicas", "scale_senders"]

# One stable name, so `kubectl get -o yaml --show-managed-fields` says who set replicas and
# an HPA or Argo CD can be told to leave this manager's field alone.
FIELD_MANAGER = "herald-operator"

logger = logging.getLogger(__name__)


def desired_replicas(*, sending_bots: Iterable[str], minimum: int, maximum: int) -> int:
    """Replicas for the senders: one per bot with active work, within [minimum, maximum]."""
    wanted = len(set(sending_bots))
    return max(minimum, min(maximum, wanted))


class ScaleDownWindow:
    """Scale down only to the most replicas wanted over the last ``seconds``, as the HPA's
    scale-down stabilisation does; up at once, and to the floor at once when no bot sends.

    Removing a replica while bots still send moves the leases it held to another replica
    (Kubernetes picks which Pod goes, not Herald): a handoff costs the bot its lease time
    in sending. Broadcasts applied together end at about the same time, so holding the
    replicas a little past the first bot's last send usually spares every handoff. Pure:
    time is an argument.
    """

    def __init__(self, *, seconds: float) -> None:
        self.seconds = seconds
        self._wanted: list[tuple[float, int]] = []  # (when, replicas wanted), oldest first

    def replicas(self, wanted: int, *, floor: int, now: float) -> int:
        """What to apply now, given what the sending bots want now."""
        self._wanted = [(at, n) for at, n in self._wanted if now - at < self.seconds]
        self._wanted.append((now, wanted))
        if wanted <= floor:
            # Nothing sends beyond the floor: no lease to hand off, idle costs nothing.
            self._wanted = [(now, wanted)]
            return wanted
        return max(n for _, n in self._wanted)


class ScaleResult:
    """What happened to the Deployment; the loop logs a missing one only once."""

    UNCHANGED = "unchanged"
    SCALED = "scaled"
    MISSING = "missing"


async def scale_senders(
    api: client.ApiClient,
    *,
    namespace: str,
    deployment: str,
    replicas: int,
    request_timeout: float | None = None,
) -> str:
    """Set the Deployment's replicas through its scale subresource, if they differ; each
    call to the API server gives up after ``request_timeout`` seconds."""
    apps = client.AppsV1Api(api)

    def apply() -> str:
        try:
            scale = apps.read_namespaced_deployment_scale(
                deployment, namespace, _request_timeout=request_timeout
            )
            # The API omits a zero count, which the client then reads as None.
            current = (scale.spec.replicas if scale.spec is not None else None) or 0
            if current == replicas:
                return ScaleResult.UNCHANGED
            apps.patch_namespaced_deployment_scale(
                deployment,
                namespace,
                {"spec": {"replicas": replicas}},
                field_manager=FIELD_MANAGER,
                _request_timeout=request_timeout,
            )
        except ApiException as exc:
            if exc.status == 404:
                return ScaleResult.MISSING
            raise
        return ScaleResult.SCALED

    # The kubernetes client is synchronous; a thread keeps the event loop (and kopf) moving.
    return await asyncio.to_thread(apply)
