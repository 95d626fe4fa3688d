"""The planner on dry runs, fromBroadcast and spreadOver: spec, last status and facts in;
control, rate, preview and conditions out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from herald.core.broadcasts import BroadcastSpec
from herald.core.deliveries import DeliveryState
from herald.core.envelopes import BroadcastState, SendLimits
from herald.core.statuses import ConditionStatus, ConditionType, Phase
from herald.operator.planning import (
    PREVIEW_REFRESH,
    Facts,
    LedgerFacts,
    Reason,
    SourceState,
    TokenState,
    plan,
    preview_due,
)

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def spec(**overrides: Any) -> BroadcastSpec:
    raw: dict[str, Any] = {
        "botRef": {"name": "shop-bot"},
        "content": {"text": "<b>Sale</b>"},
        "audience": {"subscribers": {}},
    }
    raw.update(overrides)
    return BroadcastSpec.model_validate(raw)


def ledger(*, total: int, **counts: int) -> LedgerFacts:
    return LedgerFacts(
        materialised=True,
        published=True,
        total=total,
        counts={DeliveryState(k): v for k, v in counts.items()},
    )


def facts(**overrides: Any) -> Facts:
    values: dict[str, Any] = {"generation": 1, "token": TokenState.FOUND}
    values.update(overrides)
    return Facts(**values)


T = ConditionStatus.TRUE
LANGUAGES: dict[str | None, int] = {"ru": 30, "en": 60, None: 10}
FROM = {"fromBroadcast": {"name": "last-week", "states": ["failed", "uncertain"]}}


def holding(conditions: Any) -> set[str]:
    return {c.type for c in conditions if c.status is T}


def test_dry_run_previews_and_is_healthy_without_sending() -> None:
    s = spec(dryRun=True, content={"text": "hi", "localized": {"ru": {"text": "привет"}}})
    p = plan(spec=s, status=None, facts=facts(languages=LANGUAGES), now=NOW)
    assert (p.materialise, p.publish, p.control, p.sending) == (False, False, None, False)
    # Ready and not Reconciling: kstatus and Argo CD read it as healthy, not in progress.
    assert holding(p.status.conditions) == {ConditionType.READY, ConditionType.DRY_RUN}
    assert p.status.phase is Phase.DRY_RUN
    assert p.status.condition(ConditionType.READY).reason == Reason.DRY_RUN  # type: ignore[union-attr]
    preview = p.status.preview
    assert preview is not None
    assert (preview.recipients, preview.variants) == (100, {"default": 70, "ru": 30})
    assert (preview.messages_per_second, preview.estimated_duration) == (25.0, "4s")
    assert p.status.effective_rate is None
    message = p.status.condition(ConditionType.DRY_RUN).message  # type: ignore[union-attr]
    assert "100 recipients" in message
    assert "set spec.dryRun to false" in message


def test_dry_run_keeps_its_preview_between_counts() -> None:
    s = spec(dryRun=True)
    first = plan(spec=s, status=None, facts=facts(languages=LANGUAGES), now=NOW).status
    again = plan(spec=s, status=first, facts=facts(), now=NOW + timedelta(seconds=30))
    assert again.status.preview == first.preview
    assert not again.transition


def test_a_paid_dry_run_says_its_stars_and_a_budget_too_small() -> None:
    s = spec(
        dryRun=True,
        rate={"messagesPerSecond": 100, "allowPaidBroadcast": True, "starsBudget": 5},
    )
    limits = SendLimits(messages_per_second=30, paid_messages_per_second=1000)
    p = plan(spec=s, status=None, facts=facts(languages=LANGUAGES, limits=limits), now=NOW)
    assert p.status.preview is not None
    assert p.status.preview.stars == 10
    message = p.status.condition(ConditionType.DRY_RUN).message  # type: ignore[union-attr]
    assert "at most 10 Stars" in message
    assert "more than the starsBudget of 5" in message


def test_dry_run_turned_off_materialises_and_drops_the_preview() -> None:
    first = plan(spec=spec(dryRun=True), status=None, facts=facts(languages=LANGUAGES), now=NOW)
    p = plan(spec=spec(), status=first.status, facts=facts(generation=2), now=NOW)
    assert (p.materialise, p.control) == (True, BroadcastState.ACTIVE)
    assert p.status.preview is None
    assert p.status.condition(ConditionType.DRY_RUN).status is ConditionStatus.FALSE  # type: ignore[union-attr]
    assert p.status.phase is Phase.PENDING
    assert p.transition


def test_dry_run_of_a_missing_segment_stalls() -> None:
    s = spec(dryRun=True, audience={"segment": "gone"})
    p = plan(spec=s, status=None, facts=facts(segment_exists=False), now=NOW)
    assert holding(p.status.conditions) == {ConditionType.STALLED}
    assert p.status.condition(ConditionType.STALLED).reason == Reason.SEGMENT_NOT_FOUND  # type: ignore[union-attr]


def test_dry_run_with_a_bad_token_is_not_previewed() -> None:
    p = plan(
        spec=spec(dryRun=True), status=None, facts=facts(token=TokenState.SECRET_NOT_FOUND), now=NOW
    )
    assert ConditionType.STALLED in holding(p.status.conditions)
    assert p.status.preview is None


@pytest.mark.parametrize(
    ("after", "generation", "expected"),
    [
        pytest.param(timedelta(seconds=10), 1, False, id="fresh"),
        pytest.param(PREVIEW_REFRESH, 1, True, id="old"),
        pytest.param(timedelta(seconds=10), 2, True, id="new-generation"),
    ],
)
def test_preview_due(after: timedelta, generation: int, expected: bool) -> None:
    first = plan(spec=spec(dryRun=True), status=None, facts=facts(languages=LANGUAGES), now=NOW)
    assert preview_due(first.status, generation=generation, now=NOW + after) is expected
    assert preview_due(None, generation=1, now=NOW)


@pytest.mark.parametrize(
    ("source", "reason", "true"),
    [
        pytest.param(
            SourceState.NOT_FOUND,
            Reason.SOURCE_BROADCAST_NOT_FOUND,
            {ConditionType.STALLED},
            id="not-found-stalls",
        ),
        pytest.param(
            SourceState.OTHER_BOT,
            Reason.SOURCE_BROADCAST_OTHER_BOT,
            {ConditionType.STALLED},
            id="other-bot-stalls",
        ),
        pytest.param(
            SourceState.ITSELF,
            Reason.SOURCE_BROADCAST_UNUSABLE,
            {ConditionType.STALLED},
            id="itself-stalls",
        ),
        pytest.param(
            SourceState.DRY_RUN,
            Reason.SOURCE_BROADCAST_UNUSABLE,
            {ConditionType.STALLED},
            id="a-dry-run-stalls",
        ),
        pytest.param(
            SourceState.UNFINISHED,
            Reason.WAITING_FOR_SOURCE_BROADCAST,
            {ConditionType.RECONCILING, ConditionType.PROGRESSING},
            id="still-sending-waits",
        ),
    ],
)
def test_from_broadcast_waits_for_its_source(
    source: SourceState, reason: Reason, true: set[ConditionType]
) -> None:
    p = plan(spec=spec(audience=FROM), status=None, facts=facts(source=source), now=NOW)
    assert (p.materialise, p.control) == (False, None)
    assert holding(p.status.conditions) == true
    assert p.status.condition(ConditionType.READY).reason == reason  # type: ignore[union-attr]
    assert "'last-week'" in p.status.condition(ConditionType.READY).message  # type: ignore[union-attr]


def test_from_broadcast_of_a_finished_source_materialises() -> None:
    p = plan(spec=spec(audience=FROM), status=None, facts=facts(), now=NOW)
    assert (p.materialise, p.control) == (True, BroadcastState.ACTIVE)


def test_from_broadcast_once_materialised_no_longer_asks_for_its_source() -> None:
    p = plan(
        spec=spec(audience=FROM),
        status=None,
        facts=facts(ledger=ledger(total=3, pending=3), source=SourceState.NOT_FOUND),
        now=NOW,
    )
    assert p.control is BroadcastState.ACTIVE


def test_a_dry_run_of_an_unfinished_source_previews_what_it_has() -> None:
    s = spec(dryRun=True, audience=FROM)
    p = plan(
        spec=s,
        status=None,
        facts=facts(source=SourceState.UNFINISHED, languages={None: 3}),
        now=NOW,
    )
    assert p.status.phase is Phase.DRY_RUN
    assert p.status.preview is not None
    assert p.status.preview.recipients == 3


def test_a_spread_holds_senders_until_the_audience_is_counted() -> None:
    s = spec(rate={"messagesPerSecond": 25, "spreadOver": "1h"})
    p = plan(spec=s, status=None, facts=facts(), now=NOW)
    assert p.materialise
    assert (p.control, p.rate, p.status.effective_rate) == (BroadcastState.PAUSED, None, None)
    assert not p.sending


def test_a_spread_paces_at_audience_over_duration_with_its_eta() -> None:
    s = spec(rate={"messagesPerSecond": 25, "spreadOver": "1h"})
    p = plan(spec=s, status=None, facts=facts(ledger=ledger(total=3600, pending=3600)), now=NOW)
    assert (p.control, p.rate, p.status.effective_rate) == (BroadcastState.ACTIVE, 1.0, 1.0)
    assert p.status.eta == NOW + timedelta(hours=1)


def test_without_a_spread_the_rate_in_force_is_the_spec_under_the_bot() -> None:
    limits = SendLimits(messages_per_second=10)
    p = plan(spec=spec(), status=None, facts=facts(limits=limits), now=NOW)
    assert (p.control, p.rate, p.status.effective_rate) == (BroadcastState.ACTIVE, 10.0, 10.0)
