"""The kopf handlers: gather facts, call the planner, apply the plan. Nothing is decided here.

Every handler funnels into one idempotent :meth:`Reconciler.reconcile`, run on create,
resume and spec updates (for a prompt reaction, e.g. a pause) and by a level-based timer
(kopf can miss events; schedules must start on time; status must refresh). A per-broadcast
lock keeps a timer run and an update from interleaving. Slow work (materialising and
queueing a large audience) runs in a background task per broadcast so that a pause is never
stuck behind it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import asyncpg
import kopf
import nats
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.kv import KeyValue
from pydantic import SecretStr, ValidationError

from herald.core import envelopes, logs, migrating, streams, subjects
from herald.core.broadcasts import GROUP, PLURAL, VERSION, BroadcastSpec, BroadcastStatus
from herald.core.envelopes import BroadcastState, CompletionRecord, ControlRecord
from herald.operator import audiences, controls, ledgers, orphans, planning, publishing, scaling
from herald.operator.metrics import Metrics, Result, result_of, view_of
from herald.operator.planning import Facts, Plan, RateSample, TokenState
from herald.operator.settings import Settings

__all__ = ["Reconciler", "register"]

logger = logging.getLogger(__name__)

# Kopf keeps its bookkeeping in annotations under this prefix: the Broadcast's status schema
# is Herald's contract and has no room for kopf's own fields.
_KOPF_PREFIX = "herald.dev"
_FINALIZER = "herald.dev/finalizer"


@dataclass
class _Memory:
    """What the operator remembers about one broadcast between runs (lost on restart, and
    rebuilt from the status and the ledger on the next run)."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    preparing: asyncio.Task[None] | None = None
    status: BroadcastStatus | None = None  # the last status written
    written_at: float = 0.0  # monotonic time of that write
    sample: RateSample | None = None
    settled: bool = False  # finished and announced: nothing left to do but exist


class Reconciler:
    """Connections and per-broadcast memory, shared by the handlers of one operator."""

    def __init__(self, settings: Settings, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics if metrics is not None else Metrics()
        self.memory: dict[str, _Memory] = {}
        self.sending: dict[str, str] = {}  # uid -> bot id of broadcasts that need a sender
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._kv: KeyValue | None = None
        self._pool: asyncpg.Pool | None = None
        self._api: client.ApiClient | None = None
        self._scaler: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self.stopping = False  # set on shutdown: in-flight runs may then fail quietly

    # --- life cycle ------------------------------------------------------------------------

    async def start(self) -> None:
        s = self.settings
        self._api = client.ApiClient(_kubernetes_configuration())
        self._pool = await asyncpg.create_pool(
            s.database.url.get_secret_value(),
            min_size=s.database.min_connections,
            max_size=s.database.max_connections,
        )
        connection = await asyncpg.connect(s.database.url.get_secret_value())
        try:
            await migrating.ensure_schema(connection, migrate=s.database.migrate)
        finally:
            await connection.close()
        self._nc = await nats.connect(s.nats.url, max_reconnect_attempts=-1, name="herald-operator")
        self._js = self._nc.jetstream(timeout=s.operator.nats_timeout_seconds)
        replicas = s.nats.replicas
        await streams.ensure_work_stream(self._js, replicas=replicas)
        await streams.ensure_events_stream(self._js, replicas=replicas)
        self._kv = await streams.ensure_control_bucket(self._js, replicas=replicas)
        self._scaler = asyncio.create_task(self._scale_forever(), name="herald-scaler")
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="herald-sweeper")
        logger.info("Connected to NATS, Postgres and Kubernetes.")

    async def stop(self) -> None:
        self.stopping = True
        tasks = [m.preparing for m in self.memory.values() if m.preparing is not None]
        tasks += [t for t in (self._scaler, self._sweeper) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._nc is not None:
            await self._nc.drain()
        if self._pool is not None:
            await self._pool.close()
        if self._api is not None:
            self._api.close()  # type: ignore[no-untyped-call]

    @property
    def js(self) -> JetStreamContext:
        assert self._js is not None, "the operator has not started"
        return self._js

    @property
    def kv(self) -> KeyValue:
        assert self._kv is not None, "the operator has not started"
        return self._kv

    @property
    def pool(self) -> asyncpg.Pool:
        assert self._pool is not None, "the operator has not started"
        return self._pool

    @property
    def api(self) -> client.ApiClient:
        assert self._api is not None, "the operator has not started"
        return self._api

    def _memory(self, uid: str) -> _Memory:
        return self.memory.setdefault(uid, _Memory())

    # --- reconcile -------------------------------------------------------------------------

    async def reconcile(self, body: kopf.Body, *, cause: str) -> BroadcastStatus | None:
        """Run one reconcile; returns the status it arrived at, None when there was nothing
        to do."""
        meta = body["metadata"]
        uid: str = meta["uid"]
        memory = self._memory(uid)
        async with memory.lock:
            if meta.get("deletionTimestamp"):
                return None  # the finalizer has it now
            try:
                spec = BroadcastSpec.model_validate(body.get("spec") or {})
            except ValidationError as exc:
                # The API server validates the same rules; this only happens with a CRD
                # older than the operator. Retrying cannot help.
                logger.error(
                    "Broadcast %s/%s has an invalid spec: %s",
                    meta["namespace"],
                    meta["name"],
                    exc.error_count(),
                )
                return None
            generation = int(meta.get("generation") or 0)
            previous = memory.status or _status_of(body)
            if (
                memory.settled
                and previous is not None
                and previous.observed_generation == generation
            ):
                return None
            return await self._reconcile(body, spec, previous, memory, cause=cause)

    async def _reconcile(
        self,
        body: kopf.Body,
        spec: BroadcastSpec,
        previous: BroadcastStatus | None,
        memory: _Memory,
        *,
        cause: str,
    ) -> BroadcastStatus:
        meta = body["metadata"]
        uid, namespace, name = meta["uid"], meta["namespace"], meta["name"]
        token_state, token = await self._read_token(namespace, spec)
        now = datetime.now(UTC)
        facts = Facts(
            generation=int(meta.get("generation") or 0),
            token=token_state,
            segment_exists=await audiences.segment_exists(self.pool, spec.audience),
            ledger=await ledgers.ledger_facts(self.pool, uid),
            fault=await controls.read_fault(self.kv, uid),
            rate_sample=memory.sample,
        )
        plan = planning.plan(spec=spec, status=previous, facts=facts, now=now)

        if plan.clear_fault:
            await controls.delete_fault(self.kv, uid)
        if (plan.materialise or plan.publish) and token is not None:
            self._prepare(
                memory=memory, uid=uid, namespace=namespace, name=name, token=token, spec=spec
            )
        if plan.control is not None:
            await self._put_control(
                uid=uid,
                namespace=namespace,
                name=name,
                generation=facts.generation,
                token=token,
                spec=spec,
                plan=plan,
            )
        if plan.purge_work:
            await self._stop_preparing(memory)
            await publishing.purge_work(self.js, uid)
            await publishing.delete_consumer(self.js, uid)
        if plan.close_pending is not None:
            closed = await ledgers.close_open(self.pool, uid, plan.close_pending)
            if closed:
                logger.info(
                    "Closed %d open recipients of %s/%s (%s).",
                    closed,
                    namespace,
                    name,
                    plan.close_pending,
                )
        if plan.completion is not None:
            await self._announce(uid, namespace, name, plan)
        if plan.sending and token is not None:
            self.sending[uid] = subjects.bot_id_of(token.get_secret_value())
        else:
            self.sending.pop(uid, None)

        # A finished broadcast is written once more with its final counts, then left alone.
        final = plan.purge_work and (
            plan.completion is not None
            or (facts.ledger is not None and facts.ledger.completion_recorded)
        )
        await self._write_status(body, memory, plan, now=now, force=final)
        for event in plan.events:
            kopf.event(body, type=event.type.value, reason=event.reason, message=event.message)
        memory.settled = final
        self.metrics.observe(
            uid,
            view_of(
                namespace=namespace,
                name=name,
                spec=spec,
                status=plan.status,
                sending=plan.sending,
                finished=final,
            ),
        )
        logger.debug("Reconciled %s/%s on %s: %s", namespace, name, cause, plan.status.phase)
        return plan.status

    async def _read_token(
        self, namespace: str, spec: BroadcastSpec
    ) -> tuple[TokenState, SecretStr | None]:
        core = client.CoreV1Api(self.api)
        ref = spec.bot_ref

        def read() -> tuple[TokenState, SecretStr | None]:
            try:
                secret = core.read_namespaced_secret(ref.name, namespace)
            except ApiException as exc:
                if exc.status == 404:
                    return TokenState.SECRET_NOT_FOUND, None
                raise
            raw = (secret.data or {}).get(ref.key)
            if raw is None:
                return TokenState.KEY_NOT_FOUND, None
            try:
                token = base64.b64decode(raw).decode().strip()
                subjects.bot_id_of(token)
            except (binascii.Error, UnicodeDecodeError, ValueError):
                return TokenState.MALFORMED, None
            return TokenState.FOUND, SecretStr(token)

        return await asyncio.to_thread(read)

    async def _put_control(
        self,
        *,
        uid: str,
        namespace: str,
        name: str,
        generation: int,
        token: SecretStr | None,
        spec: BroadcastSpec,
        plan: Plan,
    ) -> None:
        assert plan.control is not None
        if token is None:
            # Without a token no record can be written; a stop must still reach senders.
            if plan.control is BroadcastState.STOPPED:
                await controls.delete_control(self.kv, uid)
            return
        record = ControlRecord(
            uid=uid,
            namespace=namespace,
            name=name,
            generation=generation,
            bot_id=subjects.bot_id_of(token.get_secret_value()),
            token=token,
            content=spec.content,
            messages_per_second=float(spec.rate.messages_per_second),
            allow_paid_broadcast=spec.rate.allow_paid_broadcast,
            stars_budget=spec.rate.stars_budget,
            delivery=spec.delivery,
            state=plan.control,
            deadline=spec.schedule.deadline if spec.schedule else None,
        )
        if await controls.put_control(self.kv, record):
            logger.info("Control of %s/%s is now %s.", namespace, name, plan.control.value)

    async def _announce(self, uid: str, namespace: str, name: str, plan: Plan) -> None:
        assert plan.completion is not None
        st = plan.status
        await publishing.publish_completion(
            self.js,
            CompletionRecord(
                uid=uid,
                namespace=namespace,
                name=name,
                outcome=plan.completion,
                total=st.total,
                delivered=st.delivered,
                blocked=st.blocked,
                failed=st.failed,
                uncertain=st.uncertain,
                started_at=st.started_at,
                completed_at=st.completed_at,
            ),
        )
        await ledgers.record_completion(self.pool, uid)

    async def _write_status(
        self,
        body: kopf.Body,
        memory: _Memory,
        plan: Plan,
        *,
        now: datetime,
        force: bool = False,
    ) -> None:
        status = plan.status
        previous = memory.status or _status_of(body)
        elapsed = time.monotonic() - memory.written_at
        due = elapsed >= self.settings.operator.refresh_seconds
        if not (force or plan.transition) and (status == previous or not due):
            return
        meta = body["metadata"]
        api = client.CustomObjectsApi(self.api)
        patch = {"status": status.model_dump(mode="json")}

        def write() -> None:
            api.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                meta["namespace"],
                PLURAL,
                meta["name"],
                patch,
                field_manager=scaling.FIELD_MANAGER,
                _content_type="application/merge-patch+json",
            )

        await asyncio.to_thread(write)
        memory.status = status
        memory.written_at = time.monotonic()
        terminal = status.delivered + status.failed + status.blocked + status.uncertain
        memory.sample = RateSample(terminal=terminal, at=now.replace(microsecond=0))

    # --- background preparation ------------------------------------------------------------

    def _prepare(
        self,
        *,
        memory: _Memory,
        uid: str,
        namespace: str,
        name: str,
        token: SecretStr,
        spec: BroadcastSpec,
    ) -> None:
        if memory.preparing is not None and not memory.preparing.done():
            return
        bot_id = subjects.bot_id_of(token.get_secret_value())
        memory.preparing = asyncio.create_task(
            self._materialise_and_publish(uid, namespace, name, bot_id, spec),
            name=f"prepare-{uid}",
        )

    async def _materialise_and_publish(
        self, uid: str, namespace: str, name: str, bot_id: str, spec: BroadcastSpec
    ) -> None:
        try:
            started = time.monotonic()
            async with self.pool.acquire() as connection:
                total = await audiences.materialise(
                    connection,
                    uid=uid,
                    namespace=namespace,
                    name=name,
                    bot_id=bot_id,
                    audience=spec.audience,
                )
            materialised = time.monotonic()
            self.metrics.materialise_time.observe(materialised - started)
            self.metrics.materialised.inc(total)
            report = await publishing.publish_work(
                self.pool,
                self.js,
                uid=uid,
                batch_size=self.settings.operator.batch_size,
                window=self.settings.operator.publish_window,
            )
            self.metrics.published_batches.inc(report.batches)
            self.metrics.published_recipients.inc(report.recipients)
            logger.info(
                "Broadcast %s/%s: %d recipients materialised in %.1fs, %d batches queued in %.1fs.",
                namespace,
                name,
                total,
                materialised - started,
                report.batches,
                time.monotonic() - materialised,
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            self.metrics.prepare_errors.inc()
            # The timer retries; the cursor and ON CONFLICT make the retry cheap and exact.
            logger.exception(
                "Preparing %s/%s failed; retrying on the next resync.", namespace, name
            )

    async def _stop_preparing(self, memory: _Memory) -> None:
        task = memory.preparing
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        memory.preparing = None

    # --- deletion --------------------------------------------------------------------------

    async def finalise(self, body: kopf.Body) -> None:
        """Stop senders, drop queued work, the consumer and the KV keys; keep the ledger."""
        meta = body["metadata"]
        uid, namespace, name = meta["uid"], meta["namespace"], meta["name"]
        memory = self._memory(uid)
        await self._stop_preparing(memory)
        self.sending.pop(uid, None)
        try:
            async with asyncio.timeout(self.settings.operator.nats_timeout_seconds):
                await self._stop_control(uid)
                await publishing.purge_work(self.js, uid)
                await publishing.delete_consumer(self.js, uid)
                await controls.delete_control(self.kv, uid)
                await controls.delete_fault(self.kv, uid)
        except (TimeoutError, nats.errors.Error) as exc:
            # Deletion must not hang on NATS: queued batches left behind are dropped by
            # senders (no control key means no broadcast), and the ledger guards re-sends.
            logger.warning(
                "Broadcast %s/%s: NATS did not answer (%s); deleting it without purging its work.",
                namespace,
                name,
                type(exc).__name__,
            )
        self.memory.pop(uid, None)
        self.metrics.forget(uid)
        logger.info("Broadcast %s/%s stopped; its ledger rows are kept.", namespace, name)

    async def _sweep_forever(self) -> None:
        s = self.settings.operator
        while True:
            await asyncio.sleep(s.sweep_seconds)
            try:
                await self._sweep()
            except (TimeoutError, nats.errors.Error, ApiException) as exc:
                logger.warning("Sweeping orphaned control records failed (%s); retrying.", exc)

    async def _sweep(self) -> None:
        """Stop the control records of Broadcasts deleted while NATS did not answer."""
        # Records first, Broadcasts second: see herald.operator.orphans.
        records = await controls.list_controls(self.kv)
        if not records:
            return
        live = await asyncio.to_thread(self._live_uids)
        refs = [orphans.ControlRef(r.uid, r.namespace, r.name) for r in records]
        for ref in orphans.orphaned(refs, live, self.settings.operator.namespaces):
            logger.warning(
                "Broadcast %s/%s is gone but its control record was left behind; stopping it.",
                ref.namespace,
                ref.name,
            )
            self.sending.pop(ref.uid, None)
            self.memory.pop(ref.uid, None)
            self.metrics.forget(ref.uid)
            async with asyncio.timeout(self.settings.operator.nats_timeout_seconds):
                await self._stop_control(ref.uid)
                await publishing.purge_work(self.js, ref.uid)
                await publishing.delete_consumer(self.js, ref.uid)
                await controls.delete_control(self.kv, ref.uid)
                await controls.delete_fault(self.kv, ref.uid)

    def _live_uids(self) -> set[str]:
        api = client.CustomObjectsApi(self.api)
        namespaces = self.settings.operator.namespaces
        if namespaces:
            pages = [
                api.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL) for ns in namespaces
            ]
        else:
            pages = [api.list_cluster_custom_object(GROUP, VERSION, PLURAL)]
        listed = cast("list[dict[str, Any]]", pages)
        return {item["metadata"]["uid"] for page in listed for item in page["items"]}

    async def _stop_control(self, uid: str) -> None:
        with contextlib.suppress(nats.js.errors.KeyNotFoundError):
            entry = await self.kv.get(subjects.control_key(uid))
            if entry.value:
                record = envelopes.decode(ControlRecord, entry.value)
                stopped = record.model_copy(update={"state": BroadcastState.STOPPED})
                await controls.put_control(self.kv, stopped)

    # --- scaling ---------------------------------------------------------------------------

    async def _scale_forever(self) -> None:
        s = self.settings
        if not s.scaling.manage_replicas:
            logger.info("Leaving sender replicas alone (HERALD_SCALING_MANAGE_REPLICAS=false).")
            return
        # After a restart every Broadcast is reconciled once within a timer period; scaling
        # earlier would count too few and scale senders down under running broadcasts.
        await asyncio.sleep(2 * s.operator.timer_seconds)
        missing_logged = False
        while True:
            replicas = scaling.desired_replicas(
                sending_bots=self.sending.values(),
                minimum=s.scaling.min_replicas,
                maximum=s.scaling.max_replicas,
            )
            self.metrics.sender_replicas.set(replicas)
            try:
                result = await scaling.scale_senders(
                    self.api,
                    namespace=s.sender.namespace,
                    deployment=s.sender.deployment,
                    replicas=replicas,
                )
            except ApiException as exc:
                logger.warning("Scaling the senders failed (%s); retrying.", exc.status)
            else:
                if result == scaling.ScaleResult.MISSING:
                    if not missing_logged:
                        logger.warning(
                            "Sender Deployment %s/%s not found; not scaling until it exists.",
                            s.sender.namespace,
                            s.sender.deployment,
                        )
                    missing_logged = True
                else:
                    missing_logged = False
                    if result == scaling.ScaleResult.SCALED:
                        logger.info("Sender replicas set to %d.", replicas)
            await asyncio.sleep(s.operator.timer_seconds)


def _status_of(body: kopf.Body) -> BroadcastStatus | None:
    raw = body.get("status")
    if not raw:
        return None
    try:
        return BroadcastStatus.model_validate(dict(raw))
    except ValidationError:
        # A status Herald cannot read (hand-edited, older format) is rebuilt from the facts.
        return None


def _kubernetes_configuration() -> client.Configuration:
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    return configuration


def register(registry: kopf.OperatorRegistry, reconciler: Reconciler) -> None:
    """Register the handlers of one operator in ``registry``."""
    s = reconciler.settings.operator
    resource = (GROUP, VERSION, PLURAL)

    @kopf.on.startup(registry=registry)
    async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=_KOPF_PREFIX)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=_KOPF_PREFIX)
        settings.persistence.finalizer = _FINALIZER
        # Events are Herald's transitions (posted explicitly) and warnings, not every log
        # line of every handler run.
        settings.posting.level = logging.WARNING
        # Herald serves one resource whose CRD is installed before the operator starts, in
        # a fixed list of namespaces or cluster-wide: observing every CRD and namespace
        # for changes would need cluster-wide read RBAC that buys nothing.
        settings.scanning.disabled = True
        await reconciler.start()

    # A registry of our own starts without kopf's default login handlers: log in the way
    # the kubernetes client does (in-cluster service account, else KUBECONFIG).
    kopf.on.login(registry=registry)(kopf.login_via_client)

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        await reconciler.stop()

    async def react(body: kopf.Body, reason: kopf.Reason | str, **_: Any) -> None:
        meta = body["metadata"]
        started = time.monotonic()
        with logs.broadcast(meta["namespace"], meta["name"]):
            try:
                status = await reconciler.reconcile(body, cause=str(reason))
            except Exception:
                if reconciler.stopping:
                    # Connections close under a run that kopf did not stop in time; the next
                    # start reconciles everything again anyway.
                    logger.info("Reconcile interrupted by shutdown.")
                    return
                reconciler.metrics.reconciled(Result.ERROR, time.monotonic() - started)
                # Level-based: the timer runs the same reconcile again shortly.
                logger.exception("Reconcile failed; retrying on the next resync.")
            else:
                reconciler.metrics.reconciled(result_of(status), time.monotonic() - started)

    kopf.on.create(*resource, registry=registry, id="reconcile-create")(react)
    kopf.on.resume(*resource, registry=registry, id="reconcile-resume")(react)
    kopf.on.update(*resource, registry=registry, id="reconcile-update", field="spec")(react)

    @kopf.timer(*resource, registry=registry, interval=s.timer_seconds, id="resync")
    async def resync(body: kopf.Body, **_: Any) -> None:
        await react(body, "resync")

    @kopf.on.delete(*resource, registry=registry, id="finalise")
    async def finalise(body: kopf.Body, **_: Any) -> None:
        with logs.broadcast(body["metadata"]["namespace"], body["metadata"]["name"]):
            await reconciler.finalise(body)
