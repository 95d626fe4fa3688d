"""Stopping a Broadcast that is gone: one teardown for the finaliser and for the sweep that
catches the deletions NATS did not hear about.

Deletion must not hang on NATS, so the finaliser lets a Broadcast go when NATS does not
answer; its control record may then be left behind, and senders would go on. The sweep lists
the control records, then the live Broadcasts (in that order: see
:mod:`herald.operator.orphans`), and tears down what no Broadcast owns any more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import nats.js.errors

from herald.core import envelopes, subjects
from herald.core.envelopes import BroadcastState, ControlRecord
from herald.operator import controls, orphans, publishing
from herald.operator.connections import Connections
from herald.operator.settings import OperatorSettings
from herald.operator.waiting import Unavailable

__all__ = ["sweep_forever", "teardown"]

logger = logging.getLogger(__name__)


async def teardown(c: Connections, uid: str) -> None:
    """Stop the senders of a Broadcast that is gone, drop its work and its KV keys."""
    async with c.nats("stopping the broadcast"):
        await _stop_control(c, uid)
        await publishing.purge_work(c.js, uid)
        await publishing.delete_consumer(c.js, uid)
        await controls.delete_control(c.kv, uid)
        await controls.delete_fault(c.kv, uid)


async def _stop_control(c: Connections, uid: str) -> None:
    with contextlib.suppress(nats.js.errors.KeyNotFoundError):
        entry = await c.kv.get(subjects.control_key(uid))
        if entry.value:
            record = envelopes.decode(ControlRecord, entry.value)
            # A stopped broadcast's record carries no token.
            stopped = record.model_copy(update={"state": BroadcastState.STOPPED, "token": None})
            await c.kv.put(subjects.control_key(uid), envelopes.encode(stopped))


async def sweep_forever(
    c: Connections, settings: OperatorSettings, forget: Callable[[str], None]
) -> None:
    """Every ``sweep_seconds``: tear down control records whose Broadcast is gone, calling
    ``forget`` with each uid first."""
    while True:
        await asyncio.sleep(settings.sweep_seconds)
        try:
            await _sweep(c, settings, forget)
        except Unavailable as exc:
            logger.warning("Sweeping orphaned control records: %s", exc.wait.message)


async def _sweep(c: Connections, settings: OperatorSettings, forget: Callable[[str], None]) -> None:
    # Records first, Broadcasts second: see herald.operator.orphans.
    async with c.nats("listing control records"):
        records = await controls.list_controls(c.kv)
    if not records:
        return
    live = await c.kubernetes(
        "listing Broadcasts",
        lambda: c.broadcasts.live_uids(settings.namespaces or None),  # none: the cluster
    )
    refs = [orphans.ControlRef(r.uid, r.namespace, r.name) for r in records]
    for ref in orphans.orphaned(refs, live, settings.namespaces):
        logger.warning(
            "Broadcast %s/%s is gone but its control record was left behind; stopping it.",
            ref.namespace,
            ref.name,
        )
        forget(ref.uid)
        await teardown(c, ref.uid)
