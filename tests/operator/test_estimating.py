"""The rate in force and a dry run's preview, as tables."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from herald.core.broadcasts import Rate, parse_duration, spec_duration
from herald.core.contents import Content
from herald.core.envelopes import SendLimits
from herald.operator import estimating

NOW = datetime(2026, 12, 1, 9, 0, 0, 123456, tzinfo=UTC)
FREE_BOT = SendLimits(messages_per_second=20, paid_messages_per_second=None)
PAID_BOT = SendLimits(messages_per_second=30, paid_messages_per_second=500)


@pytest.mark.parametrize(
    ("rate", "limits", "recipients", "expected"),
    [
        pytest.param({}, None, 1000, 25.0, id="default-rate"),
        pytest.param({"messagesPerSecond": 30}, FREE_BOT, 1000, 20.0, id="capped-by-the-bot"),
        pytest.param({"spreadOver": "8h"}, None, 28_800, 1.0, id="spread-one-per-second"),
        pytest.param({"spreadOver": "1h"}, None, 1000, 0.278, id="spread-rounded-up"),
        pytest.param({"spreadOver": "1m"}, None, 1_000_000, 25.0, id="spread-capped-by-the-rate"),
        pytest.param(
            {"messagesPerSecond": 30, "spreadOver": "1m"},
            FREE_BOT,
            1_000_000,
            20.0,
            id="spread-capped-by-the-bot",
        ),
        pytest.param({"spreadOver": "8h"}, None, None, 25.0, id="spread-not-counted-yet"),
        pytest.param({"spreadOver": "8h"}, None, 0, 25.0, id="spread-of-nobody"),
        pytest.param(
            {"messagesPerSecond": 1000, "allowPaidBroadcast": True},
            PAID_BOT,
            10,
            500.0,
            id="paid-capped-by-the-bots-paid-limit",
        ),
        pytest.param(
            {"messagesPerSecond": 1000, "allowPaidBroadcast": True, "spreadOver": "1h"},
            PAID_BOT,
            360_000,
            100.0,
            id="paid-spread",
        ),
    ],
)
def test_rate_in_force(
    rate: dict[str, Any], limits: SendLimits | None, recipients: int | None, expected: float
) -> None:
    got = estimating.rate_in_force(
        rate=Rate.model_validate(rate), limits=limits, recipients=recipients
    )
    assert got == expected


def test_a_spread_ends_within_its_duration() -> None:
    for recipients in (1, 7, 999, 12_345, 89_999):  # below 25 per second for an hour
        per_second = estimating.rate_in_force(
            rate=Rate(spread_over="1h"), limits=None, recipients=recipients
        )
        assert recipients / per_second <= 3600


@pytest.mark.parametrize(
    ("rate", "recipients", "expected"),
    [
        pytest.param({}, 1000, None, id="free"),
        pytest.param({"allowPaidBroadcast": True}, 1000, 100, id="paid"),
        pytest.param({"allowPaidBroadcast": True}, 1001, 101, id="paid-rounded-up"),
        pytest.param({"allowPaidBroadcast": True}, 0, 0, id="paid-nobody"),
    ],
)
def test_stars_cost(rate: dict[str, Any], recipients: int, expected: int | None) -> None:
    assert estimating.stars_cost(rate=Rate.model_validate(rate), recipients=recipients) == expected


LOCALIZED = Content.model_validate(
    {"text": "Sale", "localized": {"ru": {"text": "Скидки"}, "pt-br": {"text": "Promoção"}}}
)


@pytest.mark.parametrize(
    ("content", "languages", "expected"),
    [
        pytest.param(
            Content(text="hi"), {"en": 3, "ru": 2, None: 1}, {"default": 6}, id="no-variants"
        ),
        pytest.param(
            LOCALIZED,
            {"ru": 2, "ru-ua": 1, "pt-br": 4, "pt": 5, "en": 3, None: 1},
            {"default": 9, "pt-br": 4, "ru": 3},
            id="exact-then-primary-then-default",
        ),
        pytest.param(LOCALIZED, {}, {}, id="nobody"),
    ],
)
def test_variant_counts(
    content: Content, languages: dict[str | None, int], expected: dict[str, int]
) -> None:
    assert estimating.variant_counts(content, languages) == expected


def test_preview_of_a_paid_localized_broadcast() -> None:
    preview = estimating.preview(
        content=LOCALIZED,
        rate=Rate(messages_per_second=100, allow_paid_broadcast=True),
        limits=PAID_BOT,
        languages={"ru": 4000, "en": 6000},
        now=NOW,
    )
    assert preview.recipients == 10_000
    assert preview.variants == {"default": 6000, "ru": 4000}
    assert preview.messages_per_second == 100.0
    assert preview.estimated_duration == "1m40s"
    assert preview.stars == 1000
    assert preview.generated_at == NOW.replace(microsecond=0)


def test_preview_of_a_spread() -> None:
    preview = estimating.preview(
        content=Content(text="hi"),
        rate=Rate(spread_over="2h"),
        limits=FREE_BOT,
        languages={None: 7200},
        now=NOW,
    )
    assert (preview.messages_per_second, preview.estimated_duration) == (1.0, "2h")
    assert preview.stars is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("8h", 28_800), ("90m", 5400), ("1h30m", 5400), ("1h2m3s", 3723), ("45s", 45)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "8", "8 hours", "1d", "m30"])
def test_not_durations(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.2, "1s"), (59.5, "1m"), (3600, "1h"), (3725.2, "1h2m6s"), (86_400, "24h")],
)
def test_spec_duration(seconds: float, text: str) -> None:
    assert spec_duration(seconds) == text
