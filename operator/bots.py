"""One reconcile of a Bot: read its token Secret, verify the token with getMe, count its
subscribers, write its status, and publish it (a :class:`BotRecord` with the token, the
webhook secret and the callback secret sealed, and its limits) for the admin bot, senders and
herald-api while it is Ready, with its consumer of transactional messages, or withdraw it when
it is not.

:func:`bot_status` decides the status from what was observed; :class:`BotReconciler` does
the reading and writing. The status is handed back as a patch for kopf to apply, so a run
that changes nothing writes nothing.
"""

from __future__ import annotations

import base64
import binascii
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import kopf
from pydantic import ValidationError

from herald.core import subjects
from herald.core.bots import (
    CALLBACK_SECRET_MIN_BYTES,
    BotCondition,
    BotReason,
    BotSpec,
    BotStatus,
    SecretKeyRef,
    SubscriberCounts,
    UpdatesMode,
)
from herald.core.envelopes import BotRecord, SendLimits
from herald.core.statuses import ConditionStatus
from herald.operator import controls, messages
from herald.operator.identities import Resolved, Target
from herald.operator.planning import TokenState
from herald.operator.reconciling import Reconciler

__all__ = ["BotReconciler", "Observed", "bot_status"]

logger = logging.getLogger(__name__)

_REASONS = {
    TokenState.SECRET_NOT_FOUND: BotReason.SECRET_NOT_FOUND,
    TokenState.KEY_NOT_FOUND: BotReason.KEY_NOT_FOUND,
    TokenState.MALFORMED: BotReason.TOKEN_MALFORMED,
    TokenState.REFUSED: BotReason.TOKEN_INVALID,
    TokenState.UNVERIFIED: BotReason.TELEGRAM_UNREACHABLE,
}


@dataclass(frozen=True, kw_only=True)
class Observed:
    generation: int
    resolved: Resolved
    webhook_secret_missing: str | None = None  # what is wrong with it, when it is
    # What is wrong with spec.callbacks' secret, when something is: the reason and its words.
    callback_secret_problem: tuple[BotReason, str] | None = None
    subscribers: SubscriberCounts | None = None


def bot_status(previous: BotStatus | None, seen: Observed, *, now: datetime) -> BotStatus:
    """The Bot's status after a run; ``previous`` keeps the identity while Telegram is
    unreachable and the transition time while Ready does not flip."""
    prev = previous or BotStatus()
    resolved = seen.resolved
    found = resolved.state is TokenState.FOUND
    if found and seen.webhook_secret_missing is not None:
        ready, reason = False, BotReason.WEBHOOK_SECRET_NOT_FOUND
        message = f"{seen.webhook_secret_missing}; updates.mode webhook needs it."
    elif found and seen.callback_secret_problem is not None:
        ready, (reason, problem) = False, seen.callback_secret_problem
        message = f"{problem}; spec.callbacks needs it to sign outcome callbacks."
    elif found:
        ready, reason = True, BotReason.VERIFIED
        message = f"getMe: @{resolved.username} ({resolved.bot_id})."
    else:
        ready, reason = False, _REASONS[resolved.state]
        message = resolved.detail or reason.value
    before = next(iter(prev.conditions), None)
    status = ConditionStatus.TRUE if ready else ConditionStatus.FALSE
    if resolved.state is TokenState.UNVERIFIED:
        status = ConditionStatus.UNKNOWN
    since = before.last_transition_time if before is not None and before.status is status else now
    condition = BotCondition(
        type="Ready",
        status=status,
        reason=reason.value,
        message=message,
        last_transition_time=since,
        observed_generation=seen.generation,
    )
    bot_id: int | None
    verified_at: datetime | None
    if resolved.state is TokenState.FOUND and resolved.bot_id is not None:
        bot_id, username = int(resolved.bot_id), resolved.username
        # The time of the first verification of this bot, not of every resync.
        verified_at = prev.verified_at if prev.bot_id == bot_id and prev.verified_at else now
    elif resolved.state is TokenState.UNVERIFIED:
        # Neither verified nor refused: keep what was known.
        bot_id, username, verified_at = prev.bot_id, prev.username, prev.verified_at
    else:
        bot_id, username, verified_at = None, None, None
    return BotStatus(
        bot_id=bot_id,
        username=username,
        subscribers=seen.subscribers or prev.subscribers,
        verified_at=verified_at,
        observed_generation=seen.generation,
        conditions=(condition,),
    )


def _secret_value(data: dict[str, str] | None, key: str) -> str | None:
    if data is None or key not in data:
        return None
    try:
        return base64.b64decode(data[key], validate=True).decode().strip() or None
    except (binascii.Error, UnicodeDecodeError):
        return None


class BotReconciler:
    """The Bot handlers' work, on the connections and caches of the Broadcasts' reconciler."""

    def __init__(self, broadcasts: Reconciler) -> None:
        self._r = broadcasts

    async def reconcile(self, body: kopf.Body, patch: kopf.Patch) -> None:
        meta = body["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        generation = int(meta.get("generation") or 0)
        previous = _status_of(body)
        try:
            spec = BotSpec.model_validate(body.get("spec") or {})
        except ValidationError as exc:
            raise kopf.PermanentError(
                f"The spec cannot be read: {exc.error_count()} errors"
            ) from exc
        target = Target(secret=spec.token_secret_ref, limits=None, bot=name)
        resolved = await self._r.resolve(namespace, target)
        webhook_secret, missing = None, None
        if spec.updates.mode is UpdatesMode.WEBHOOK and spec.updates.webhook is not None:
            ref = spec.updates.webhook.secret_token_ref
            webhook_secret = await self._webhook_secret(namespace, ref)
            if webhook_secret is None:
                missing = f"Secret {ref.name!r} has no webhook secret token under {ref.key!r}"
        callback_secret, problem = None, None
        if spec.callbacks is not None:
            callback_secret, problem = await self._callback_secret(
                namespace, spec.callbacks.secret_ref
            )
        counts = None
        if resolved.bot_id is not None:
            counts = await self._counts(resolved.bot_id)
        now = datetime.now(UTC)
        status = bot_status(
            previous,
            Observed(
                generation=generation,
                resolved=resolved,
                webhook_secret_missing=missing,
                callback_secret_problem=problem,
                subscribers=counts,
            ),
            now=now,
        )
        ready = status.conditions[0].status is ConditionStatus.TRUE
        async with self._r.c.nats("publishing the Bot for the admin bot"):
            if ready and resolved.token is not None and resolved.bot_id is not None:
                # Before the record: herald-api queues messages only for a published Bot.
                if await messages.ensure_consumer(self._r.c.js, resolved.bot_id):
                    logger.info(
                        "Bot %s/%s: its transactional messages are queued.", namespace, name
                    )
                key_of = subjects.bot_record_key(namespace, name)
                record = BotRecord(
                    namespace=namespace,
                    name=name,
                    generation=generation,
                    bot_id=resolved.bot_id,
                    username=resolved.username or "",
                    token=self._r.ring.seal(resolved.token.get_secret_value(), bound_to=key_of),
                    limits=SendLimits.of(spec.limits),
                    callback_secret=(
                        self._r.ring.seal(callback_secret, bound_to=key_of + "/callbacks")
                        if callback_secret
                        else None
                    ),
                    admins=spec.admins,
                    updates=spec.updates.mode,
                    webhook_url=spec.updates.webhook.url if spec.updates.webhook else None,
                    webhook_secret=(
                        self._r.ring.seal(webhook_secret, bound_to=key_of + "/webhook")
                        if webhook_secret
                        else None
                    ),
                    default_language=spec.default_language,
                )
                if await controls.put_bot(self._r.c.kv, record, self._r.ring):
                    logger.info("Bot %s/%s is published as @%s.", namespace, name, record.username)
            elif resolved.state is not TokenState.UNVERIFIED:
                await controls.delete_bot(self._r.c.kv, namespace, name)
        if status != previous:
            patch.status.update(status.model_dump(mode="json", exclude_none=True))
            before = previous.conditions[0] if previous and previous.conditions else None
            after = status.conditions[0]
            if before is None or (before.status, before.reason) != (after.status, after.reason):
                kopf.event(
                    body,
                    type="Normal" if ready else "Warning",
                    reason=after.reason,
                    message=after.message,
                )

    async def forget(self, namespace: str, name: str) -> None:
        async with self._r.c.nats("withdrawing the Bot"):
            await controls.delete_bot(self._r.c.kv, namespace, name)

    async def _webhook_secret(self, namespace: str, ref: SecretKeyRef) -> str | None:
        return _secret_value(await self._r.secret_data(namespace, ref.name), ref.key)

    async def _callback_secret(
        self, namespace: str, ref: SecretKeyRef
    ) -> tuple[str | None, tuple[BotReason, str] | None]:
        """The secret that signs outcome callbacks, or what is wrong with it."""
        secret = _secret_value(await self._r.secret_data(namespace, ref.name), ref.key)
        if secret is None:
            missing = f"Secret {ref.name!r} has no callback secret under {ref.key!r}"
            return None, (BotReason.CALLBACK_SECRET_NOT_FOUND, missing)
        size = len(secret.encode())
        if size < CALLBACK_SECRET_MIN_BYTES:
            short = (
                f"The callback secret in Secret {ref.name!r} under {ref.key!r} has {size} "
                f"bytes, fewer than {CALLBACK_SECRET_MIN_BYTES}"
            )
            return None, (BotReason.CALLBACK_SECRET_TOO_SHORT, short)
        return secret, None

    async def _counts(self, bot_id: str) -> SubscriberCounts | None:
        # The subscriber table keeps bot ids as their digits, as broadcasts.bot_id does.
        async with self._r.c.database("counting the Bot's subscribers"):
            try:
                row = await self._r.c.pool.fetchrow(
                    "SELECT count(*) FILTER (WHERE is_active) AS active, "
                    "count(*) FILTER (WHERE NOT is_active) AS inactive "
                    "FROM subscribers WHERE bot_id = $1",
                    bot_id,
                )
            except asyncpg.PostgresError as exc:
                logger.warning("Counting the subscribers of bot %s failed: %s", bot_id, exc)
                return None
        assert row is not None
        return SubscriberCounts(active=row["active"], inactive=row["inactive"])


def _status_of(body: kopf.Body) -> BotStatus | None:
    raw: Any = body.get("status")
    if not raw:
        return None
    try:
        return BotStatus.model_validate(dict(raw))
    except ValidationError:
        return None
