"""One idempotent reconcile of a Broadcast: gather facts, call the planner, apply the plan.

Every handler funnels into :meth:`Reconciler.reconcile`, run on create, resume and spec
updates (for a prompt reaction, e.g. a pause) and by a level-based timer (kopf can miss
events; schedules must start on time; status must refresh). A per-broadcast lock keeps a
timer run and an update from interleaving. Slow work (materialising and queueing a large
audience) runs in a background task per broadcast so that a pause is never stuck behind it.

Every wait on Postgres, NATS or the API server is bounded (:mod:`herald.operator.waiting`):
a reconcile that cannot get an answer writes which service it waits for into the status
and is retried by the next timer run, so the lock is never held for ever. Preparation has
a pool of its own, so any number of audiences being prepared at once cannot take the
connections reconciles need. A finished Broadcast costs nothing: no Secret read, no ledger
count, until its spec changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import asyncpg
import kopf
import nats
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.kv import KeyValue
from pydantic import SecretStr, ValidationError

from herald.core import envelopes, migrating, streams, subjects
from herald.core.broadcasts import GROUP, PLURAL, VERSION, BroadcastSpec, BroadcastStatus
from herald.core.envelopes import BroadcastState, CompletionRecord, ControlRecord
from herald.operator import (
    audiences,
    controls,
    ledgers,
    orphans,
    planning,
    publishing,
    scaling,
    tokens,
)
from herald.operator.metrics import Metrics, view_of
from herald.operator.planning import Facts, Plan, RateSample, TokenState, Wait
from herald.operator.settings import Settings
from herald.operator.waiting import Service, Timeouts, Unavailable, waiting_for

__all__ = ["Reconciler", "status_of"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

# Two counter-only status writes at a time keep up with hundreds of running Broadcasts on
# the default refresh period (bench/many_broadcasts.py) and leave the API server's answers
# to transitions.
_REFRESH_WRITES = 2
_KUBERNETES_THREADS = 16


@dataclass
class _Memory:
    """What the operator remembers about one broadcast between runs (lost on restart, and
    rebuilt from the status and the ledger on the next run)."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    preparing: asyncio.Task[None] | None = None
    preparing_wait: Wait | None = None  # why the last preparation gave up, until one succeeds
    status: BroadcastStatus | None = None  # the last status written
    written_at: float = 0.0  # monotonic time of that write
    sample: RateSample | None = None


class Reconciler:
    """Connections and per-broadcast memory, shared by the handlers of one operator."""

    def __init__(self, settings: Settings, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics if metrics is not None else Metrics()
        self.timeouts = Timeouts.of(settings.operator)
        self.memory: dict[str, _Memory] = {}
        self._secrets = tokens.SecretCache(ttl=settings.operator.token_cache_seconds)
        # Status writes that only move counters, in flight at once (see _write_status).
        self._refreshing = asyncio.Semaphore(_REFRESH_WRITES)
        self.sending: dict[str, str] = {}  # uid -> bot id of broadcasts that need a sender
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._kv: KeyValue | None = None
        self._pool: asyncpg.Pool | None = None
        self._preparing_pool: asyncpg.Pool | None = None
        self._api: client.ApiClient | None = None
        self._scaler: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self.stopping = False  # set on shutdown: in-flight runs may then fail quietly

    # --- life cycle ------------------------------------------------------------------------

    async def start(self) -> None:
        s = self.settings
        # The kubernetes client blocks, so its calls run in the loop's default executor:
        # asyncio's default of cores + 4 threads queued a pause's status write behind a
        # burst of other writes (bench/many_broadcasts.py); waits are bounded anyway.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=_KUBERNETES_THREADS, thread_name_prefix="kubernetes")
        )
        self._api = client.ApiClient(_kubernetes_configuration())
        # The client imports an API's module (tens of thousands of lines) on first use:
        # pay for it now rather than in the first reconciles of a burst of Broadcasts.
        for api in (client.CoreV1Api, client.CustomObjectsApi, client.AppsV1Api):
            api(self._api)
        dsn = s.database.url.get_secret_value()
        self._pool = await asyncpg.create_pool(
            dsn, min_size=s.database.min_connections, max_size=s.database.max_connections
        )
        # Its own pool: preparations queue for these, never for the reconciles' connections.
        self._preparing_pool = await asyncpg.create_pool(
            dsn, min_size=0, max_size=s.operator.preparing_connections
        )
        connection = await asyncpg.connect(dsn)
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
        for pool in (self._pool, self._preparing_pool):
            if pool is not None:
                await pool.close()
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
    def preparing_pool(self) -> asyncpg.Pool:
        assert self._preparing_pool is not None, "the operator has not started"
        return self._preparing_pool

    @property
    def api(self) -> client.ApiClient:
        assert self._api is not None, "the operator has not started"
        return self._api

    def _memory(self, uid: str) -> _Memory:
        return self.memory.setdefault(uid, _Memory())

    # --- bounded waits ---------------------------------------------------------------------

    def _database(self, what: str) -> contextlib.AbstractAsyncContextManager[None]:
        return waiting_for(Service.DATABASE, self.timeouts.database, what)

    def _nats(self, what: str) -> contextlib.AbstractAsyncContextManager[None]:
        return waiting_for(Service.NATS, self.timeouts.nats, what)

    async def _kubernetes(self, what: str, call: Callable[[], _T]) -> _T:
        """Run a blocking client call off the loop. The call carries the same time-out
        itself (``_request_timeout``), so its thread ends when the wait does."""
        async with waiting_for(Service.KUBERNETES, self.timeouts.kubernetes, what):
            return await asyncio.to_thread(call)

    # --- reconcile -------------------------------------------------------------------------

    async def reconcile(self, body: kopf.Body, *, cause: str) -> BroadcastStatus | None:
        """Run one reconcile; returns the status it arrived at, None when there was nothing
        to do. Raises :class:`Unavailable` after reporting the wait in the status."""
        meta = body["metadata"]
        uid: str = meta["uid"]
        if meta.get("deletionTimestamp"):
            return None  # the finalizer has it now
        generation = int(meta.get("generation") or 0)
        written = status_of(body)
        if planning.finished(written, generation=generation):
            # Reached its outcome for this spec: nothing to read or write.
            if uid not in self.memory and written is not None:
                self._remember_finished(body, written)
            return None
        memory = self._memory(uid)
        async with memory.lock:
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
            previous = memory.status or status_of(body)
            if planning.finished(previous, generation=generation):
                return None
            try:
                return await self._reconcile(body, spec, previous, memory, cause=cause)
            except Unavailable as exc:
                await self._report_wait(body, memory, exc.wait, generation=generation)
                raise

    def _remember_finished(self, body: kopf.Body, status: BroadcastStatus) -> None:
        """First sight of a Broadcast finished before this operator started: counted in the
        metrics once, and remembered, with no I/O."""
        meta = body["metadata"]
        self._memory(meta["uid"]).status = status
        with contextlib.suppress(ValidationError):
            spec = BroadcastSpec.model_validate(body.get("spec") or {})
            view = view_of(
                namespace=meta["namespace"],
                name=meta["name"],
                spec=spec,
                status=status,
                sending=False,
                finished=True,
            )
            self.metrics.observe(meta["uid"], view)

    async def _gather(
        self, body: kopf.Body, spec: BroadcastSpec, memory: _Memory
    ) -> tuple[Facts, SecretStr | None]:
        meta = body["metadata"]
        uid = meta["uid"]
        token_state, token = await self._read_token(meta["namespace"], spec)
        async with self._database("counting the ledger"), self.pool.acquire() as connection:
            segment_exists = await audiences.segment_exists(connection, spec.audience)
            ledger = await ledgers.ledger_facts(connection, uid)
        async with self._nats("reading the fault record"):
            fault = await controls.read_fault(self.kv, uid)
        facts = Facts(
            generation=int(meta.get("generation") or 0),
            token=token_state,
            segment_exists=segment_exists,
            ledger=ledger,
            fault=fault,
            rate_sample=memory.sample,
            # A retry under way may still succeed; until then say why the last one gave up.
            preparing_wait=memory.preparing_wait,
        )
        return facts, token

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
        facts, token = await self._gather(body, spec, memory)
        now = datetime.now(UTC)
        plan = planning.plan(spec=spec, status=previous, facts=facts, now=now)

        if plan.clear_fault:
            async with self._nats("clearing the fault record"):
                await controls.delete_fault(self.kv, uid)
        if (plan.materialise or plan.publish) and token is not None:
            # The consumer before the control record: a sender told to serve the broadcast
            # finds its work queue there at once.
            async with self._nats("creating the work consumer"):
                await publishing.ensure_consumer(self.js, uid)
            self._prepare(
                memory=memory, uid=uid, namespace=namespace, name=name, token=token, spec=spec
            )
        if plan.control is not None:
            async with self._nats("writing the control record"):
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
            async with self._nats("dropping queued work"):
                await publishing.purge_work(self.js, uid)
                await publishing.delete_consumer(self.js, uid)
        if plan.close_pending is not None:
            async with self._database("closing open recipients"):
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
        final = planning.finished(plan.status, generation=facts.generation)
        await self._write_status(body, memory, plan.status, now=now, force=final or plan.transition)
        for event in plan.events:
            kopf.event(body, type=event.type.value, reason=event.reason, message=event.message)
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

    async def _report_wait(
        self, body: kopf.Body, memory: _Memory, wait: Wait, *, generation: int
    ) -> None:
        """Say in the status which service the reconcile waits for. Not when that is the API
        server: the write would wait on it too, and add to its load when it is overloaded
        (the operator's log says it)."""
        if wait.reason is planning.Reason.WAITING_FOR_KUBERNETES:
            return
        previous = memory.status or status_of(body)
        status = planning.waiting(previous, wait=wait, generation=generation, now=datetime.now(UTC))
        if status == previous:
            return
        with contextlib.suppress(Unavailable):
            await self._write_status(body, memory, status, now=datetime.now(UTC), force=True)

    async def _read_token(
        self, namespace: str, spec: BroadcastSpec
    ) -> tuple[TokenState, SecretStr | None]:
        ref = spec.bot_ref
        fresh, data = self._secrets.get(namespace, ref.name, now=time.monotonic())
        if not fresh:
            core = client.CoreV1Api(self.api)
            timeout = self.timeouts.kubernetes

            def read() -> dict[str, str] | None:
                try:
                    secret = core.read_namespaced_secret(
                        ref.name, namespace, _request_timeout=timeout
                    )
                except ApiException as exc:
                    if exc.status == 404:
                        return None
                    raise
                return {k: str(v) for k, v in (secret.data or {}).items()}

            data = await self._kubernetes("reading the bot token Secret", read)
            self._secrets.put(namespace, ref.name, data, now=time.monotonic())
        return tokens.token_of(data, ref.key)

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
        record = CompletionRecord(
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
        )
        async with self._nats("announcing the completion"):
            await publishing.publish_completion(self.js, record)
        async with self._database("recording the completion"):
            await ledgers.record_completion(self.pool, uid)

    async def _write_status(
        self,
        body: kopf.Body,
        memory: _Memory,
        status: BroadcastStatus,
        *,
        now: datetime,
        force: bool,
    ) -> None:
        previous = memory.status or status_of(body)
        elapsed = time.monotonic() - memory.written_at
        due = elapsed >= self.settings.operator.refresh_seconds
        if force:
            await self._patch_status(body, memory, status, now=now)
            return
        if status == previous or not due or self._refreshing.locked():
            # Counters only, and two such writes already in flight: shed rather than queue,
            # so a transition (a pause, a completion) never waits behind hundreds of
            # refreshes for the API server. The next run writes the newer counts anyway.
            return
        async with self._refreshing:
            await self._patch_status(body, memory, status, now=now)

    async def _patch_status(
        self, body: kopf.Body, memory: _Memory, status: BroadcastStatus, *, now: datetime
    ) -> None:
        meta = body["metadata"]
        api = client.CustomObjectsApi(self.api)
        patch = {"status": status.model_dump(mode="json")}
        timeout = self.timeouts.kubernetes

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
                _request_timeout=timeout,
            )

        await self._kubernetes("writing the status", write)
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
            self._materialise_and_publish(
                memory=memory, uid=uid, namespace=namespace, name=name, bot_id=bot_id, spec=spec
            ),
            name=f"prepare-{uid}",
        )

    async def _materialise_and_publish(
        self,
        *,
        memory: _Memory,
        uid: str,
        namespace: str,
        name: str,
        bot_id: str,
        spec: BroadcastSpec,
    ) -> None:
        pool = self.preparing_pool
        try:
            started = time.monotonic()
            # Waiting for a connection is bounded like any other wait; the statement itself
            # may take minutes for millions of recipients.
            async with self._database("a connection to write the audience"):
                connection = await pool.acquire()
            try:
                async with waiting_for(
                    Service.DATABASE, self.timeouts.materialise, "writing the audience"
                ):
                    total = await audiences.materialise(
                        connection,
                        uid=uid,
                        namespace=namespace,
                        name=name,
                        bot_id=bot_id,
                        audience=spec.audience,
                    )
            finally:
                await pool.release(connection)
            materialised = time.monotonic()
            self.metrics.materialise_time.observe(materialised - started)
            self.metrics.materialised.inc(total)
            report = await publishing.publish_work(
                pool,
                self.js,
                uid=uid,
                batch_size=self.settings.operator.batch_size,
                window=self.settings.operator.publish_window,
                timeouts=self.timeouts,
            )
            memory.preparing_wait = None
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
        except Unavailable as exc:
            self.metrics.prepare_errors.inc()
            memory.preparing_wait = exc.wait
            # The timer retries; the cursor and ON CONFLICT make the retry cheap and exact.
            logger.warning("Preparing %s/%s: %s", namespace, name, exc.wait.message)
        except Exception:
            self.metrics.prepare_errors.inc()
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
            await self._teardown(uid)
        except Unavailable as exc:
            # Deletion must not hang on NATS: queued batches left behind are dropped by
            # senders (no control key means no broadcast), and the ledger guards re-sends.
            logger.warning(
                "Broadcast %s/%s: %s Deleting it without purging its work.",
                namespace,
                name,
                exc.wait.message,
            )
        self.memory.pop(uid, None)
        self.metrics.forget(uid)
        logger.info("Broadcast %s/%s stopped; its ledger rows are kept.", namespace, name)

    async def _teardown(self, uid: str) -> None:
        """Stop the senders of a broadcast that is gone and drop its work and KV keys."""
        async with self._nats("stopping the broadcast"):
            await self._stop_control(uid)
            await publishing.purge_work(self.js, uid)
            await publishing.delete_consumer(self.js, uid)
            await controls.delete_control(self.kv, uid)
            await controls.delete_fault(self.kv, uid)

    async def _sweep_forever(self) -> None:
        s = self.settings.operator
        while True:
            await asyncio.sleep(s.sweep_seconds)
            try:
                await self._sweep()
            except Unavailable as exc:
                logger.warning("Sweeping orphaned control records: %s", exc.wait.message)

    async def _sweep(self) -> None:
        """Stop the control records of Broadcasts deleted while NATS did not answer."""
        # Records first, Broadcasts second: see herald.operator.orphans.
        async with self._nats("listing control records"):
            records = await controls.list_controls(self.kv)
        if not records:
            return
        live = await self._kubernetes("listing Broadcasts", self._live_uids)
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
            await self._teardown(ref.uid)

    def _live_uids(self) -> set[str]:
        api = client.CustomObjectsApi(self.api)
        namespaces = self.settings.operator.namespaces
        timeout = self.timeouts.kubernetes
        if namespaces:
            pages = [
                api.list_namespaced_custom_object(
                    GROUP, VERSION, ns, PLURAL, _request_timeout=timeout
                )
                for ns in namespaces
            ]
        else:
            everywhere = api.list_cluster_custom_object(
                GROUP, VERSION, PLURAL, _request_timeout=timeout
            )
            pages = [everywhere]
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
        window = scaling.ScaleDownWindow(seconds=s.scaling.scale_down_seconds)
        while True:
            wanted = scaling.desired_replicas(
                sending_bots=self.sending.values(),
                minimum=s.scaling.min_replicas,
                maximum=s.scaling.max_replicas,
            )
            replicas = window.replicas(wanted, floor=s.scaling.min_replicas, now=time.monotonic())
            self.metrics.sender_replicas.set(replicas)
            try:
                async with waiting_for(
                    Service.KUBERNETES, self.timeouts.kubernetes, "scaling the senders"
                ):
                    result = await scaling.scale_senders(
                        self.api,
                        namespace=s.sender.namespace,
                        deployment=s.sender.deployment,
                        replicas=replicas,
                        request_timeout=self.timeouts.kubernetes,
                    )
            except Unavailable as exc:
                logger.warning("Scaling the senders: %s", exc.wait.message)
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


def status_of(body: kopf.Body) -> BroadcastStatus | None:
    """The status written on the Broadcast, or None when there is none Herald can read."""
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
    # One kept-alive connection per thread: fewer, and threads would open (and TLS-handshake)
    # a new connection for each call past the pool's size.
    configuration.connection_pool_maxsize = _KUBERNETES_THREADS
    return configuration
