"""What the plugin prints, from Broadcasts the planner reported on, without a cluster."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from herald.cli import views
from herald.core.broadcasts import Broadcast
from herald.core.progress import Progress
from herald.dev import samples

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "0s"), (59, "59s"), (60, "1m"), (119, "1m"), (7199, "119m"), (7200, "2h"), (172800, "2d")],
)
def test_age_reads_like_kubectl(seconds: int, shown: str) -> None:
    assert views.age(NOW - timedelta(seconds=seconds), now=NOW) == shown


def test_age_of_nothing_is_unknown() -> None:
    assert views.age(None, now=NOW) == "<unknown>"


@pytest.mark.parametrize(
    ("progress", "bar"),
    [
        (Progress(counted=False), "[----]"),
        (Progress(done=0, total=0), "[####]"),
        (Progress(done=0, total=10), "[----]"),
        (Progress(done=9, total=10), "[###-]"),
        (Progress(done=10, total=10), "[####]"),
    ],
)
def test_progress_bar_never_claims_done_early(progress: Progress, bar: str) -> None:
    assert views.progress_bar(progress, width=4) == bar


def test_a_bar_needs_a_cell() -> None:
    with pytest.raises(ValueError, match="at least one cell"):
        views.progress_bar(Progress(done=1, total=1), width=0)


def test_an_empty_list_prints_nothing() -> None:
    assert views.list_table([], all_namespaces=False, now=NOW) == ""


def test_status_of_an_unobserved_broadcast() -> None:
    text = views.status_text(Broadcast.model_validate(samples.objects()["unobserved"]), now=NOW)
    assert "Phase:       Pending" in text
    assert "Conditions:  none reported yet" in text
    assert "has not yet observed generation 1 (status is of generation none)" in text


def test_stalled_status_shows_why() -> None:
    broadcast = Broadcast.model_validate(samples.objects()["secret-missing"])
    text = views.status_text(broadcast, now=NOW)
    stalled = next(line for line in text.splitlines() if line.strip().startswith("Stalled"))
    assert stalled.split()[1:3] == ["True", "BotSecretNotFound"]
    assert "Secret 'shop-bot' was not found" in stalled


def test_sent_text_counts_what_went_out() -> None:
    text = views.sent_text(
        "sale",
        [
            views.SendResult(chat_id=1, ok=True, message_id=7),
            views.SendResult(chat_id=2, ok=False, error="Forbidden: bot was blocked by the user"),
        ],
    )
    assert text.splitlines() == [
        "1: sent (message 7)",
        "2: failed: Forbidden: bot was blocked by the user",
        "broadcast.herald.dev/sale: test message sent to 1 of 2 chats; its audience, ledger and "
        "status are untouched",
    ]


def test_status_shows_a_dry_runs_preview_and_a_spread() -> None:
    broadcast = Broadcast.model_validate(
        {
            "metadata": {"name": "sale", "namespace": "marketing", "generation": 1},
            "spec": {
                "botRef": {"name": "shop-bot"},
                "content": {"text": "hi"},
                "audience": {"subscribers": {}},
                "rate": {"spreadOver": "2h"},
                "dryRun": True,
            },
            "status": {
                "observedGeneration": 1,
                "effectiveRate": 1.389,
                "preview": {
                    "recipients": 10000,
                    "variants": {"default": 7000, "ru": 3000},
                    "messagesPerSecond": 1.389,
                    "estimatedDuration": "2h",
                    "generatedAt": "2026-12-01T09:00:00Z",
                },
            },
        }
    )
    text = views.status_text(broadcast, now=datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    assert "Spread:      over 2h, at 1.389 msg/s" in text
    assert "Preview:     10000 recipients (default 7000, ru 3000), about 2h at 1.389 msg/s" in text


def test_status_shows_how_far_a_recall_and_a_correction_are() -> None:
    broadcast = Broadcast.model_validate(
        {
            "metadata": {"name": "typo", "namespace": "marketing", "generation": 3},
            "spec": {
                "botRef": {"name": "shop-bot"},
                "content": {"text": "Sale"},
                "audience": {"subscribers": {}},
                "recall": True,
                "correction": {"text": "Sale!"},
            },
            "status": {"observedGeneration": 3, "delivered": 10, "recalled": 4, "corrected": 6},
        }
    )
    text = views.status_text(broadcast, now=datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    assert "Recalled:    4 of 10 delivered messages" in text
    assert "Corrected:   6 of 10 delivered messages" in text
    plain = views.status_text(
        broadcast.model_copy(
            update={"spec": broadcast.spec.model_copy(update={"recall": False, "correction": None})}
        ),
        now=datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
    )
    assert "Recalled:" not in plain and "Corrected:" not in plain
