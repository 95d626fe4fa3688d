"""The kopf handlers: registration and thin wrappers around :mod:`~herald.operator.reconciling`.

Nothing is decided here. Create, resume, spec updates and a level-based timer all run the
same reconcile; the timer runs only while the Broadcast is unfinished (kopf stops a timer
whose filter stops matching and starts it again when a spec change makes it match), so a
completed or failed Broadcast costs no periodic work at all.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import kopf

from herald.core import logs
from herald.core.bots import BOT_PLURAL
from herald.core.broadcasts import GROUP, PLURAL, VERSION
from herald.operator import planning
from herald.operator.bots import BotReconciler
from herald.operator.identities import BotIndex
from herald.operator.metrics import Result, result_of
from herald.operator.reconciling import InvalidSpec, Reconciler, has_callback_buttons, status_of
from herald.operator.waiting import Unavailable

__all__ = ["Reconciler", "register"]

logger = logging.getLogger(__name__)

# Kopf keeps its bookkeeping in annotations under this prefix: the Broadcast's status schema
# is Herald's contract and has no room for kopf's own fields.
_KOPF_PREFIX = "herald.dev"
_FINALIZER = "herald.dev/finalizer"
# The longest pause between retries of a Broadcast whose reconciles keep failing: long
# enough that a Postgres outage does not turn into a stream of Events for every Broadcast,
# short enough that all of them move again soon after it ends.
_BACKOFF_CAP = 30.0


def unfinished(body: kopf.Body, **_: Any) -> bool:
    """The timer's filter: whether the Broadcast may still have something to do."""
    generation = int(body["metadata"].get("generation") or 0)
    return not planning.finished(status_of(body), generation=generation)


def counting_clicks(body: kopf.Body, **kwargs: Any) -> bool:
    """The clicks timer's filter: finished, with callback buttons, whose presses go on."""
    return not unfinished(body, **kwargs) and has_callback_buttons(body)


def register(registry: kopf.OperatorRegistry, reconciler: Reconciler) -> None:
    """Register the handlers of one operator in ``registry``."""
    s = reconciler.settings.operator
    resource = (GROUP, VERSION, PLURAL)
    bot_resource = (GROUP, VERSION, BOT_PLURAL)
    bot_reconciler = BotReconciler(reconciler)

    # Every Bot's spec in memory, so a Broadcast's resync finds its Bot without a read; kopf
    # holds back every handler until the index is filled.
    @kopf.index(*bot_resource, registry=registry, id="bots")
    def bots(namespace: str | None, name: str, spec: kopf.Spec, **_: Any) -> Any:
        return {namespace: (name, dict(spec))}

    @kopf.on.startup(registry=registry)
    async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=_KOPF_PREFIX)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=_KOPF_PREFIX)
        settings.persistence.finalizer = _FINALIZER
        # Events are Herald's transitions (posted explicitly) and warnings, not every log
        # line of every handler run.
        settings.posting.level = logging.WARNING
        # ...including kopf's own word on a failing handler ("failed temporarily: ..."), so
        # `kubectl describe` shows why a Broadcast does not move.
        settings.posting.loggers = True
        # Herald serves one resource whose CRD is installed before the operator starts, in
        # a fixed list of namespaces or cluster-wide: observing every CRD and namespace
        # for changes would need cluster-wide read RBAC that buys nothing.
        settings.scanning.disabled = True
        # kopf's own requests (finalizers, annotations) are bounded like Herald's; its
        # default of five minutes would hold a Broadcast's handlers that long.
        settings.networking.request_timeout = s.kubernetes_timeout_seconds
        settings.networking.connect_timeout = s.kubernetes_timeout_seconds
        settings.watching.connect_timeout = s.kubernetes_timeout_seconds
        await reconciler.start()

    # A registry of our own starts without kopf's default login handlers: log in the way
    # the kubernetes client does (in-cluster service account, else KUBECONFIG).
    kopf.on.login(registry=registry)(kopf.login_via_client)

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        await reconciler.stop()

    async def on_change(body: kopf.Body, reason: kopf.Reason | str, **kwargs: Any) -> None:
        try:
            await react(reconciler, body, str(reason), BotIndex(kwargs["bots"]))
        except kopf.TemporaryError as exc:
            # The resync timer is the one retry loop (it runs while the Broadcast is
            # unfinished); a handler retry as well would double every failing reconcile
            # and write kopf's retry state into the object each time.
            logger.warning("Reconcile on %s waits for the next resync: %s", reason, exc)

    kopf.on.create(*resource, registry=registry, id="reconcile-create")(on_change)
    kopf.on.resume(*resource, registry=registry, id="reconcile-resume")(on_change)
    kopf.on.update(*resource, registry=registry, id="reconcile-update", field="spec")(on_change)

    @kopf.timer(
        *resource, registry=registry, interval=s.timer_seconds, id="resync", when=unfinished
    )
    async def resync(body: kopf.Body, **kwargs: Any) -> None:
        await react(reconciler, body, "resync", BotIndex(kwargs["bots"]))

    # While unfinished, the reconcile refreshes the clicks with the other counts.
    @kopf.timer(
        *resource,
        registry=registry,
        interval=s.refresh_seconds,
        id="clicks",
        when=counting_clicks,
    )
    async def clicks(body: kopf.Body, **_: Any) -> None:
        await reconciler.refresh_clicks(body)

    _register_bots(registry, reconciler, bot_reconciler)

    @kopf.on.delete(*resource, registry=registry, id="finalise")
    async def finalise(body: kopf.Body, **_: Any) -> None:
        with logs.broadcast(body["metadata"]["namespace"], body["metadata"]["name"]):
            await reconciler.finalise(body)


def _register_bots(
    registry: kopf.OperatorRegistry, reconciler: Reconciler, bots: BotReconciler
) -> None:
    """The Bot handlers: one reconcile on change and on a timer (which is what picks up a
    rotated token: Secrets are not watched), a withdrawal on delete."""
    resource = (GROUP, VERSION, BOT_PLURAL)
    period = reconciler.settings.operator.bot_refresh_seconds

    async def sync(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        with logs.broadcast(body["metadata"]["namespace"], body["metadata"]["name"]):
            try:
                await bots.reconcile(body, patch)
            except Unavailable as exc:
                raise kopf.TemporaryError(exc.wait.message, delay=period) from exc

    async def on_change(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        try:
            await sync(body, patch)
        except kopf.TemporaryError as exc:
            logger.warning("Bot reconcile waits for the next resync: %s", exc)

    kopf.on.create(*resource, registry=registry, id="bot-create")(on_change)
    kopf.on.resume(*resource, registry=registry, id="bot-resume")(on_change)
    kopf.on.update(*resource, registry=registry, id="bot-update", field="spec")(on_change)
    kopf.timer(*resource, registry=registry, interval=period, id="bot-resync")(sync)

    @kopf.on.delete(*resource, registry=registry, id="bot-finalise", optional=True)
    async def withdraw(body: kopf.Body, **_: Any) -> None:
        await bots.forget(body["metadata"]["namespace"], body["metadata"]["name"])


async def react(reconciler: Reconciler, body: kopf.Body, cause: str, bots: BotIndex) -> None:
    """One reconcile, its errors in kopf's terms: a spec that cannot be read is a
    PermanentError (kopf stops retrying the handler; the status already says it), all else
    a TemporaryError, retried after a backoff that grows while it keeps failing."""
    meta = body["metadata"]
    started = time.monotonic()
    with logs.broadcast(meta["namespace"], meta["name"]):
        try:
            status = await reconciler.reconcile(body, cause=cause, bots=bots)
        except InvalidSpec as exc:
            reconciler.metrics.reconciled(Result.ERROR, time.monotonic() - started)
            raise kopf.PermanentError(str(exc)) from exc
        except Unavailable as exc:
            reconciler.metrics.reconciled(Result.ERROR, time.monotonic() - started)
            raise kopf.TemporaryError(exc.wait.message, delay=_backoff(reconciler, body)) from exc
        except Exception as exc:
            if reconciler.stopping:
                # Connections close under a run that kopf did not stop in time; the next
                # start reconciles everything again anyway.
                logger.info("Reconcile interrupted by shutdown.")
                return
            reconciler.metrics.reconciled(Result.ERROR, time.monotonic() - started)
            message = f"Reconcile failed: {type(exc).__name__}: {exc}"
            raise kopf.TemporaryError(message, delay=_backoff(reconciler, body)) from exc
        reconciler.metrics.reconciled(result_of(status), time.monotonic() - started)


def _backoff(reconciler: Reconciler, body: kopf.Body) -> float:
    """The timer's period after the first failure, doubling with each failure in a row."""
    failures = reconciler.failures(body["metadata"]["uid"])
    period = reconciler.settings.operator.timer_seconds
    return float(min(_BACKOFF_CAP, period * 2 ** max(0, failures - 1)))
