from __future__ import annotations

from herald.operator.orphans import ControlRef, orphaned

A = ControlRef("uid-a", "shop", "a")
B = ControlRef("uid-b", "shop", "b")
C = ControlRef("uid-c", "other", "c")


def test_records_without_a_live_broadcast_are_orphans() -> None:
    assert orphaned([A, B], live_uids={"uid-a"}, namespaces=()) == [B]


def test_only_watched_namespaces_are_swept() -> None:
    assert orphaned([A, B, C], live_uids=set(), namespaces=("shop",)) == [A, B]
    assert orphaned([A, B, C], live_uids=set(), namespaces=()) == [A, B, C]


def test_nothing_is_orphaned_while_every_broadcast_lives() -> None:
    assert orphaned([A, C], live_uids={"uid-a", "uid-c"}, namespaces=()) == []
