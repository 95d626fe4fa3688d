"""Which control records no Broadcast stands behind any more.

Deletion removes a broadcast's control record, but when NATS does not answer in time the
finalizer lets the Broadcast go anyway (a stuck deletion is worse) and the record stays,
still saying "send". A periodic sweep finds such records and stops them. The caller must
list the records *before* it lists the Broadcasts: a record written after its Broadcast was
created then always meets that Broadcast in the second listing, so a new broadcast is never
mistaken for an orphan.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

__all__ = ["ControlRef", "orphaned"]


@dataclass(frozen=True)
class ControlRef:
    uid: str
    namespace: str
    name: str


def orphaned(
    records: Iterable[ControlRef], live_uids: Collection[str], namespaces: Collection[str]
) -> list[ControlRef]:
    """Records of watched namespaces (all when `namespaces` is empty) whose Broadcast is gone.
    Records of other namespaces belong to another operator and are left alone."""
    return [
        record
        for record in records
        if (not namespaces or record.namespace in namespaces) and record.uid not in live_uids
    ]
