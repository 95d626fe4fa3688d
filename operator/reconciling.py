"""One idempotent reconcile of a Broadcast: gather facts, call the planner, apply the plan.

(Over 400 lines because the apply steps share the per-Broadcast memory and lock; the slow
and periodic work already lives in the modules named below.)

Every handler funnels into :meth:`Reconciler.reconcile`, run on create, resume and spec
updates (for a prompt reaction, e.g. a pause) and by a level-based timer (kopf can miss
events; schedules must start on time; status must refresh). A per-broadcast lock keeps a
timer run and an update from interleaving. The rooms around it: materialising and queueing
in the background (:mod:`~herald.operator.preparing`), the connections
(:mod:`~herald.operator.connections`), the API server calls
(:mod:`herald.kube`), the teardown shared by the finaliser and the sweep
(:mod:`~herald.operator.sweeping`) and the scaling loop (:mod:`~herald.operator.scaling`).

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
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf
from pydantic import ValidationError

from herald.core.broadcasts import BroadcastSpec
from herald.core.contents import Content, callback_buttons
from herald.core.corrections import correction_key
from herald.core.deliveries import TERMINAL_STATES, DeliveryState
from herald.core.envelopes import BroadcastState, CompletionRecord, FaultReason
from herald.core.statuses import BroadcastStatus, ConditionStatus, ConditionType
from herald.kube.errors import NotFound
from herald.operator import (
    audiences,
    connections,
    controls,
    ledgers,
    messages,
    planning,
    publishing,
    retaining,
    scaling,
    sweeping,
    tokens,
)
from herald.operator.connections import Connections
from herald.operator.identities import BotIndex, Resolved, Target, Verifier, target_of
from herald.operator.metrics import Metrics, view_of
from herald.operator.planning import (
    Facts,
    LedgerFacts,
    Plan,
    RateSample,
    SourceState,
    TokenState,
    Wait,
)
from herald.operator.preparing import Preparations
from herald.operator.settings import Settings
from herald.operator.waiting import Service, Unavailable, waiting_for

__all__ = ["InvalidSpec", "Reconciler", "has_callback_buttons", "status_of"]

logger = logging.getLogger(__name__)

# Two counter-only status writes at a time keep up with hundreds of running Broadcasts on
# the default refresh period (bench/many_broadcasts.py) and leave the API server's answers
# to transitions.
_REFRESH_WRITES = 2
# Failed reconciles in a row before the status says so: one failure is often a blip that
# the next run does not meet, and a status write per blip would only add noise.
_FAILURES_REPORTED = 3
# How much of a spec's validation errors the status carries (a condition message is short).
_PROBLEMS_REPORTED = 3


class InvalidSpec(Exception):
    """The operator cannot read the spec; reported in the status, retrying cannot help."""


@dataclass
class _Memory:
    """What the operator remembers about one broadcast between runs (lost on restart, and
    rebuilt from the status and the ledger on the next run)."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    status: BroadcastStatus | None = None  # the last status written
    written_at: float = 0.0  # monotonic time of that write
    sample: RateSample | None = None
    failures: int = 0  # reconciles that failed in a row (waits and unexpected errors)


class Reconciler:
    """Connections and per-broadcast memory, shared by the handlers of one operator."""

    def __init__(self, settings: Settings, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics if metrics is not None else Metrics()
        self.memory: dict[str, _Memory] = {}
        self.sending: dict[str, str] = {}  # uid -> bot id of broadcasts that need a sender
        self.scale_now = asyncio.Event()  # a bot started needing a sender
        # bot id -> when herald-api last took a transactional message for it
        self.traffic: dict[str, datetime] = {}
        self._secrets = tokens.SecretCache(ttl=settings.operator.token_cache_seconds)
        self.ring = settings.tokens.ring()
        self.verifier = Verifier(
            api_url=settings.telegram.api_url,
            ttl=settings.operator.verify_seconds,
            clock=time.monotonic,
        )
        self._warned: set[str] = set()  # uids told that their botRef names a Secret
        # Status writes that only move counters, in flight at once (see _write_status).
        self._refreshing = asyncio.Semaphore(_REFRESH_WRITES)
        self._connections: Connections | None = None
        self._preparations: Preparations | None = None
        self._loops: list[asyncio.Task[None]] = []
        self.stopping = False  # set on shutdown: in-flight runs may then fail quietly

    # --- life cycle ------------------------------------------------------------------------

    async def start(self) -> None:
        c = self._connections = await connections.connect(self.settings)
        self._preparations = Preparations(c, self.settings.operator, self.metrics)
        self._loops = [
            asyncio.create_task(
                scaling.scale_forever(
                    c,
                    self.settings,
                    self.sending,
                    self.traffic,
                    metrics=self.metrics,
                    wake=self.scale_now,
                ),
                name="herald-scaler",
            ),
            asyncio.create_task(messages.watch_traffic(c.kv, self.traffic), name="herald-traffic"),
            asyncio.create_task(
                messages.sweep_forever(c, self.settings.operator, self.traffic),
                name="herald-message-sweeper",
            ),
            asyncio.create_task(
                sweeping.sweep_forever(c, self.settings.operator, self._forget),
                name="herald-sweeper",
            ),
            asyncio.create_task(
                retaining.retain_forever(
                    c, self.settings.operator, self.settings.ledger, self.metrics
                ),
                name="herald-retention",
            ),
        ]
        logger.info("Connected to NATS, Postgres and Kubernetes.")

    async def stop(self) -> None:
        self.stopping = True
        if self._preparations is not None:
            await self._preparations.stop_all()
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        if self._connections is not None:
            await self._connections.close()

    @property
    def c(self) -> Connections:
        assert self._connections is not None, "the operator has not started"
        return self._connections

    @property
    def preparations(self) -> Preparations:
        assert self._preparations is not None, "the operator has not started"
        return self._preparations

    def failures(self, uid: str) -> int:
        """Reconciles of the Broadcast that failed in a row, up to the latest."""
        memory = self.memory.get(uid)
        return memory.failures if memory is not None else 0

    def _memory(self, uid: str) -> _Memory:
        return self.memory.setdefault(uid, _Memory())

    def _want_sender(self, uid: str, bot_id: str | None) -> None:
        """Count the Broadcast's bot among those that need a sender (None: it needs none);
        a bot new to the count wakes the scaler instead of waiting for its next period."""
        if bot_id is None:
            self.sending.pop(uid, None)
            return
        new_bot = bot_id not in self.sending.values()
        self.sending[uid] = bot_id
        if new_bot:
            self.scale_now.set()

    def _forget(self, uid: str) -> None:
        self.sending.pop(uid, None)
        self.memory.pop(uid, None)
        self.metrics.forget(uid)

    # --- reconcile -------------------------------------------------------------------------

    async def reconcile(
        self, body: kopf.Body, *, cause: str, bots: BotIndex
    ) -> BroadcastStatus | None:
        """Run one reconcile; returns the status it arrived at, None when there was nothing
        to do. Raises :class:`Unavailable` after reporting the wait in the status,
        :class:`InvalidSpec` after reporting the spec's problems, and any other error after
        reporting it once it has failed :data:`_FAILURES_REPORTED` times in a row."""
        meta = body["metadata"]
        uid: str = meta["uid"]
        if meta.get("deletionTimestamp"):
            return None  # the finalizer has it now
        generation = int(meta.get("generation") or 0)
        written = status_of(body)
        if planning.finished(written, generation=generation):
            # Reached its outcome for this spec: nothing to read or write (the presses of
            # its callback buttons have their own timer, refresh_clicks).
            if uid not in self.memory and written is not None:
                self._remember_finished(body, written)
            return None
        memory = self._memory(uid)
        async with memory.lock:
            # The status parsed above, unless this operator wrote a newer one since.
            previous = memory.status or written
            if planning.finished(previous, generation=generation):
                return None
            try:
                spec = BroadcastSpec.model_validate(body.get("spec") or {})
            except ValidationError as exc:
                # The API server validates the same rules; this only happens with a CRD
                # older than the operator.
                await self._reject(body, memory, exc, generation=generation)
                raise InvalidSpec(f"The spec cannot be read: {_problems(exc)}") from exc
            try:
                status = await self._reconcile(body, spec, previous, memory, cause=cause, bots=bots)
            except Unavailable as exc:
                memory.failures += 1
                await self._report_wait(body, memory, exc.wait, generation=generation)
                raise
            except Exception as exc:
                memory.failures += 1
                if self.stopping:
                    raise
                if memory.failures == 1:
                    logger.exception("Reconcile failed; retrying.")
                if memory.failures >= _FAILURES_REPORTED:
                    wait = Wait(
                        reason=planning.Reason.RECONCILE_FAILED,
                        message=f"The last {memory.failures} reconciles failed, the latest "
                        f"with {type(exc).__name__}: {exc}; retrying.",
                    )
                    await self._report_wait(body, memory, wait, generation=generation)
                raise
            memory.failures = 0
            return status

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
        self, body: kopf.Body, spec: BroadcastSpec, memory: _Memory, target: Target
    ) -> tuple[Facts, Resolved, str | None]:
        """The facts, the token, and the uid of the Broadcast fromBroadcast names (None
        when it names none, or none that can be read)."""
        meta = body["metadata"]
        uid = meta["uid"]
        resolved = await self.resolve(meta["namespace"], target)
        if (
            resolved.state is TokenState.FOUND
            and spec.rate.allow_paid_broadcast
            and target.limits is not None
            and target.limits.paid_messages_per_second is None
        ):
            resolved = Resolved(state=TokenState.PAID_DISABLED)
        async with self.c.database("counting the ledger"), self.c.pool.acquire() as connection:
            segment_exists = await audiences.segment_exists(connection, spec.audience)
            ledger = await ledgers.ledger_facts(
                connection,
                uid,
                correction=correction_key(spec.correction) if spec.correction else None,
            )
        async with self.c.nats("reading the fault record"):
            fault = await controls.read_fault(self.c.kv, uid)
        if fault is not None and fault.reason is FaultReason.BOT_UNAUTHORIZED:
            # A sender met a 401: not the end of the broadcast but a question for getMe
            # about the token the Secret holds now. Verified (rotated since): the fault is
            # answered and senders go on with the new token. Refused: the planner holds the
            # broadcast Stalled until the Secret is fixed.
            if resolved.token is not None:
                self.verifier.forget(resolved.token.get_secret_value())
                resolved = await self.resolve(meta["namespace"], target)
            if resolved.state is TokenState.FOUND:
                async with self.c.nats("clearing the fault record"):
                    await controls.delete_fault(self.c.kv, uid)
                logger.info("The bot token was replaced since a sender's 401; going on.")
            fault = None
        queued = None
        if _may_have_lost_work(ledger, memory.sample):
            async with self.c.nats("counting the queued work"):
                queued = await publishing.queued_work(self.c.js, uid)
        source, source_uid = SourceState.FINISHED, None
        if spec.audience.from_broadcast is not None and (ledger is None or not ledger.materialised):
            source, source_uid = await self._source(meta["namespace"], meta["name"], spec)
        generation = int(meta.get("generation") or 0)
        languages = None
        if (
            spec.dry_run
            and ledger is None
            and resolved.bot_id is not None
            and resolved.state is TokenState.FOUND
            and segment_exists
            and source in (SourceState.FINISHED, SourceState.UNFINISHED)
            and planning.preview_due(
                memory.status or status_of(body), generation=generation, now=datetime.now(UTC)
            )
        ):
            languages = await self._count(resolved.bot_id, spec, source_uid)
        facts = Facts(
            generation=int(meta.get("generation") or 0),
            token=resolved.state,
            token_detail=resolved.detail,
            segment_exists=segment_exists,
            ledger=ledger,
            fault=fault,
            rate_sample=memory.sample,
            # A retry under way may still succeed; until then say why the last one gave up.
            preparing_wait=self.preparations.wait_of(uid),
            queued_work=queued,
            limits=target.limits,
            source=source,
            languages=languages,
        )
        return facts, resolved, source_uid

    async def _source(
        self, namespace: str, name: str, spec: BroadcastSpec
    ) -> tuple[SourceState, str | None]:
        """Where spec.audience.fromBroadcast points: the Broadcast's state and uid."""
        source = spec.audience.from_broadcast
        assert source is not None
        if source.name == name:
            return SourceState.ITSELF, None

        def read() -> dict[str, Any] | None:
            # Inside the call: a wait turns every client error into Unavailable.
            try:
                return self.c.broadcasts.get(namespace, source.name)
            except NotFound:
                return None

        body = await self.c.kubernetes("reading the fromBroadcast Broadcast", read)
        if body is None:
            return SourceState.NOT_FOUND, None
        bot = ((body.get("spec") or {}).get("botRef") or {}).get("name")
        if bot != spec.bot_ref.name:
            return SourceState.OTHER_BOT, None
        if (body.get("spec") or {}).get("dryRun"):
            return SourceState.DRY_RUN, None
        uid = str(body["metadata"]["uid"])
        written = status_of(body)
        ended = written is not None and any(
            c.status is ConditionStatus.TRUE
            for c in (
                written.condition(ConditionType.COMPLETE),
                written.condition(ConditionType.FAILED),
            )
            if c is not None
        )
        return (SourceState.FINISHED if ended else SourceState.UNFINISHED), uid

    async def _count(
        self, bot_id: str, spec: BroadcastSpec, source_uid: str | None
    ) -> dict[str | None, int]:
        """A dry run's recipients per language, on the preparing pool: one audience may take
        long to count, and must not take the connections reconciles need."""
        c = self.c
        async with c.database("a connection to count the audience"):
            connection = await c.preparing_pool.acquire()
        try:
            async with waiting_for(
                Service.DATABASE, c.timeouts.materialise, "counting the audience"
            ):
                return await audiences.count_languages(
                    connection, bot_id=bot_id, audience=spec.audience, source_uid=source_uid
                )
        finally:
            await c.preparing_pool.release(connection)

    async def _reconcile(
        self,
        body: kopf.Body,
        spec: BroadcastSpec,
        previous: BroadcastStatus | None,
        memory: _Memory,
        *,
        cause: str,
        bots: BotIndex,
    ) -> BroadcastStatus:
        meta = body["metadata"]
        uid, namespace, name = meta["uid"], meta["namespace"], meta["name"]
        target = target_of(spec.bot_ref, bots.specs(namespace))
        if target.bot is None and uid not in self._warned:
            self._warned.add(uid)
            kopf.event(
                body,
                type="Warning",
                reason="DeprecatedBotRef",
                message=f"spec.botRef {spec.bot_ref.name!r} names a Secret, not a Bot: this "
                "form is deprecated. Create a Bot (kind: Bot) with tokenSecretRef "
                f"{{name: {spec.bot_ref.name}, key: {spec.bot_ref.key}}} and the same name.",
            )
        facts, resolved, source_uid = await self._gather(body, spec, memory, target)
        token = resolved.token if resolved.state is TokenState.FOUND else None
        now = datetime.now(UTC)
        plan = planning.plan(
            spec=spec,
            status=previous,
            facts=facts,
            now=now,
            warm_up=timedelta(seconds=self.settings.scaling.warm_up_seconds),
        )
        # Senders first: a sender's start (seconds) overlaps the audience's materialisation.
        self._want_sender(uid, resolved.bot_id if plan.wants_sender else None)

        if plan.clear_fault:
            async with self.c.nats("clearing the fault record"):
                await controls.delete_fault(self.c.kv, uid)
        if plan.requeue and token is not None:
            async with self.c.database("starting a new publishing round"):
                if await publishing.requeue(self.c.pool, uid):
                    logger.warning(
                        "Broadcast %s/%s: its queued work is gone; queueing it again.",
                        namespace,
                        name,
                    )
        if (plan.materialise or plan.publish) and token is not None:
            # The consumer before the control record: a sender told to serve the broadcast
            # finds its work queue there at once.
            async with self.c.nats("creating the work consumer"):
                await publishing.ensure_consumer(self.c.js, uid)
            assert resolved.bot_id is not None
            bot_id = resolved.bot_id
            self.preparations.start(
                uid=uid,
                namespace=namespace,
                name=name,
                bot_id=bot_id,
                spec=spec,
                source_uid=source_uid,
            )
        if plan.control is not None:
            async with self.c.nats("writing the control record"):
                await self._put_control(
                    uid=uid,
                    namespace=namespace,
                    name=name,
                    generation=facts.generation,
                    resolved=resolved,
                    limits=target,
                    spec=spec,
                    plan=plan,
                )
        if plan.purge_work:
            await self.preparations.stop(uid)
            async with self.c.nats("dropping queued work"):
                await publishing.purge_work(self.c.js, uid)
                await publishing.delete_consumer(self.c.js, uid)
        if plan.close_pending is not None:
            async with self.c.database("closing open recipients"):
                closed = await ledgers.close_open(self.c.pool, uid, plan.close_pending)
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

    async def _reject(
        self, body: kopf.Body, memory: _Memory, exc: ValidationError, *, generation: int
    ) -> None:
        meta = body["metadata"]
        problems = _problems(exc)
        logger.error(
            "Broadcast %s/%s has a spec the operator cannot read: %s",
            meta["namespace"],
            meta["name"],
            problems,
        )
        previous = memory.status or status_of(body)
        status = planning.rejected(
            previous,
            message=f"The operator cannot read this spec ({problems}); the CRD installed is "
            "probably older than the operator. Upgrade the CRD, then fix the spec.",
            generation=generation,
            now=datetime.now(UTC),
        )
        await self._write_status(body, memory, status, now=datetime.now(UTC), force=True)

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
        try:
            await self._write_status(body, memory, status, now=datetime.now(UTC), force=True)
        except Unavailable:
            pass  # the log says it; the next run reports again
        except Exception:
            # The report must not hide the error being reported.
            logger.warning("Could not report the wait in the status.", exc_info=True)

    async def secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        """A Secret's data through the shared cache (Broadcasts and Bots alike)."""
        fresh, data = self._secrets.get(namespace, name, now=time.monotonic())
        if not fresh:
            data = await self.c.kubernetes(
                "reading the bot token Secret", lambda: self.c.secrets.data(namespace, name)
            )
            self._secrets.put(namespace, name, data, now=time.monotonic())
        return dict(data) if data is not None else None

    async def resolve(self, namespace: str, target: Target) -> Resolved:
        """The token at ``target``, verified with getMe."""
        ref = target.secret
        state, token = tokens.token_of(await self.secret_data(namespace, ref.name), ref.key)
        resolved = await self.verifier.resolve(state, token)
        if resolved.state in (
            TokenState.SECRET_NOT_FOUND,
            TokenState.KEY_NOT_FOUND,
            TokenState.MALFORMED,
        ):
            detail = tokens.wording(state, ref, bot=target.bot)
            return Resolved(state=resolved.state, detail=detail)
        return resolved

    async def _put_control(
        self,
        *,
        uid: str,
        namespace: str,
        name: str,
        generation: int,
        resolved: Resolved,
        limits: Target,
        spec: BroadcastSpec,
        plan: Plan,
    ) -> None:
        assert plan.control is not None
        if resolved.token is None or resolved.bot_id is None:
            # Without a token no record can be written; a stop must still reach senders.
            if plan.control is BroadcastState.STOPPED:
                await controls.delete_control(self.c.kv, uid)
            return
        record = controls.control_record(
            uid=uid,
            namespace=namespace,
            name=name,
            generation=generation,
            bot_id=resolved.bot_id,
            token=resolved.token,
            limits=limits.limits,
            spec=spec,
            state=plan.control,
            ring=self.ring,
            messages_per_second=plan.rate,
        )
        if await controls.put_control(self.c.kv, record, self.ring):
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
            clicks=dict(st.clicks or {}),
        )
        async with self.c.nats("announcing the completion"):
            await publishing.publish_completion(self.c.js, record)
        async with self.c.database("recording the completion"):
            await ledgers.record_completion(self.c.pool, uid)

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

    async def refresh_clicks(self, body: kopf.Body) -> None:
        """status.clicks of a finished Broadcast with callback buttons, when they changed:
        presses go on after the last delivery."""
        written = status_of(body)
        if written is None or not has_callback_buttons(body):
            return
        uid: str = body["metadata"]["uid"]
        async with self.c.database("counting the clicks"):
            clicks = await ledgers.click_counts(self.c.pool, uid)
        if clicks == dict(written.clicks or {}):
            return
        status = written.model_copy(
            update={"clicks": dict(sorted(clicks.items())), "total_clicks": sum(clicks.values())}
        )
        meta = body["metadata"]
        await self.c.kubernetes(
            "writing the clicks",
            lambda: self.c.broadcasts.patch_status(meta["namespace"], meta["name"], status),
        )
        memory = self.memory.get(uid)
        if memory is not None:
            memory.status = status

    async def _patch_status(
        self, body: kopf.Body, memory: _Memory, status: BroadcastStatus, *, now: datetime
    ) -> None:
        meta = body["metadata"]
        await self.c.kubernetes(
            "writing the status",
            lambda: self.c.broadcasts.patch_status(meta["namespace"], meta["name"], status),
        )
        memory.status = status
        memory.written_at = time.monotonic()
        terminal = status.delivered + status.failed + status.blocked + status.uncertain
        memory.sample = RateSample(terminal=terminal, at=now.replace(microsecond=0))

    # --- deletion ---------------------------------------------------------------------------

    async def finalise(self, body: kopf.Body) -> None:
        """Stop senders, drop queued work, the consumer and the KV keys; keep the ledger."""
        meta = body["metadata"]
        uid, namespace, name = meta["uid"], meta["namespace"], meta["name"]
        await self.preparations.stop(uid)
        self.sending.pop(uid, None)
        try:
            await sweeping.teardown(self.c, uid)
        except Unavailable as exc:
            # Deletion must not hang on NATS: queued batches left behind are dropped by
            # senders (no control key means no broadcast), and the ledger guards re-sends.
            logger.warning(
                "Broadcast %s/%s: %s Deleting it without purging its work.",
                namespace,
                name,
                exc.wait.message,
            )
        self._forget(uid)
        logger.info("Broadcast %s/%s stopped; its ledger rows are kept.", namespace, name)


def _may_have_lost_work(ledger: LedgerFacts | None, sample: RateSample | None) -> bool:
    """Whether to ask NATS if the work is gone: published, recipients still pending, and no
    progress since the last status write. While sends go on, work is plainly there, so a
    busy broadcast costs no consumer lookup per run."""
    if ledger is None or not ledger.published or not ledger.counts.get(DeliveryState.PENDING):
        return False
    terminal = sum(n for state, n in ledger.counts.items() if state in TERMINAL_STATES)
    return sample is None or terminal <= sample.terminal


def _problems(exc: ValidationError) -> str:
    """The first validation errors, each as ``spec.<field path>: <message>``."""
    errors = exc.errors(include_url=False, include_input=False)
    shown = [
        ".".join(["spec", *(str(part) for part in e["loc"])]) + ": " + e["msg"]
        for e in errors[:_PROBLEMS_REPORTED]
    ]
    more = len(errors) - len(shown)
    return "; ".join(shown) + (f"; and {more} more" if more > 0 else "")


def status_of(body: Mapping[str, Any]) -> BroadcastStatus | None:
    """The status written on the Broadcast, or None when there is none Herald can read."""
    raw = body.get("status")
    if not raw:
        return None
    try:
        return BroadcastStatus.model_validate(dict(raw))
    except ValidationError:
        # A status Herald cannot read (hand-edited, older format) is rebuilt from the facts.
        return None


def has_callback_buttons(body: kopf.Body) -> bool:
    """Whether the Broadcast's content has a callback button, whose presses are counted."""
    try:
        content = Content.model_validate((body.get("spec") or {}).get("content") or {})
    except ValidationError:
        return False
    return bool(callback_buttons(content))
