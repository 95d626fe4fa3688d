"""Sizing the sender Deployment: a pure rule, the patch of its scale subresource, and the
loop that applies them.

One sender replica holds the lease of a bot and serves all of that bot's active broadcasts
(the bot's rate limit is per bot, so a second replica for the same bot would only wait), so
the useful number of replicas is the number of distinct bots with a broadcast sending now
(or scheduled to start within ``warm_up_seconds``), or with transactional traffic within
``transactional_window_seconds``: a sender holds such a bot, pulling its messages, so the
next one never waits for a replica to start. A bot that starts needing a sender is scaled
for at once, before its audience is materialised, so the two overlap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from herald.operator.connections import FIELD_MANAGER, Connections
from herald.operator.metrics import Metrics
from herald.operator.settings import Settings
from herald.operator.waiting import Service, Unavailable, waiting_for

__all__ = [
    "FIELD_MANAGER",
    "ScaleDownWindow",
    "ScaleResult",
    "desired_replicas",
    "recent_traffic",
    "scale_forever",
    "scale_senders",
]


logger = logging.getLogger(__name__)


def desired_replicas(*, sending_bots: Iterable[str], minimum: int, maximum: int) -> int:
    """Replicas for the senders: one per bot with active work, within [minimum, maximum]."""
    wanted = len(set(sending_bots))
    return max(minimum, min(maximum, wanted))


def recent_traffic(traffic: Mapping[str, datetime], *, now: datetime, window: float) -> set[str]:
    """The bots herald-api took a transactional message for within `window` seconds."""
    since = now - timedelta(seconds=window)
    return {bot_id for bot_id, at in traffic.items() if at > since}


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
    only_up: bool = False,
) -> str:
    """Set the Deployment's replicas through its scale subresource, if they differ (with
    `only_up`, if they are fewer); each call to the API server gives up after
    ``request_timeout`` seconds."""
    apps = client.AppsV1Api(api)

    def apply() -> str:
        try:
            scale = apps.read_namespaced_deployment_scale(
                deployment, namespace, _request_timeout=request_timeout
            )
            # The API omits a zero count, which the client then reads as None.
            current = (scale.spec.replicas if scale.spec is not None else None) or 0
            if current == replicas or (only_up and current > replicas):
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


async def scale_forever(
    c: Connections,
    settings: Settings,
    sending: Mapping[str, str],
    traffic: Mapping[str, datetime],
    *,
    metrics: Metrics,
    wake: asyncio.Event,
) -> None:
    """Every timer period, and at once when `wake` is set: size the senders to the bots in
    ``sending`` (uid -> bot id) and those with recent ``traffic`` (bot id -> herald-api's
    last message)."""
    s = settings
    if not s.scaling.manage_replicas:
        logger.info("Leaving sender replicas alone (HERALD_SCALING_MANAGE_REPLICAS=false).")
        return
    # After a restart every Broadcast is reconciled once within a timer period; scaling
    # down earlier would count too few and stop senders under running broadcasts. Up is
    # safe, and a Broadcast applied meanwhile need not wait for its sender.
    counted_from = time.monotonic() + 2 * s.operator.timer_seconds
    missing_logged = False
    window = ScaleDownWindow(seconds=s.scaling.scale_down_seconds)
    while True:
        wake.clear()
        recent = recent_traffic(
            traffic, now=datetime.now(UTC), window=s.operator.transactional_window_seconds
        )
        wanted = desired_replicas(
            sending_bots=[*sending.values(), *recent],
            minimum=s.scaling.min_replicas,
            maximum=s.scaling.max_replicas,
        )
        replicas = window.replicas(wanted, floor=s.scaling.min_replicas, now=time.monotonic())
        metrics.sender_replicas.set(replicas)
        try:
            async with waiting_for(
                Service.KUBERNETES, c.timeouts.kubernetes, "scaling the senders"
            ):
                result = await scale_senders(
                    c.api,
                    namespace=s.sender.namespace,
                    deployment=s.sender.deployment,
                    replicas=replicas,
                    request_timeout=c.timeouts.kubernetes,
                    only_up=time.monotonic() < counted_from,
                )
        except Unavailable as exc:
            logger.warning("Scaling the senders: %s", exc.wait.message)
        else:
            if result == ScaleResult.MISSING:
                if not missing_logged:
                    logger.warning(
                        "Sender Deployment %s/%s not found; not scaling until it exists.",
                        s.sender.namespace,
                        s.sender.deployment,
                    )
                missing_logged = True
            else:
                missing_logged = False
                if result == ScaleResult.SCALED:
                    logger.info("Sender replicas set to %d.", replicas)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(s.operator.timer_seconds):
                await wake.wait()
