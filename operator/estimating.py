"""Rates and previews: the rate a Broadcast is paced at and what a dry run reports. Pure.

The rate in force is the lowest of three: ``spec.rate.messagesPerSecond``, the Bot's limit
(free, or paid with ``allowPaidBroadcast``) and, with ``spec.rate.spreadOver``, the audience
divided by that duration. Senders get it in the control record
(:func:`herald.operator.controls.control_record`); the status shows it as ``effectiveRate``
and a dry run's preview estimates the duration with it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime

from herald.core.broadcasts import MESSAGES_PER_STAR, Rate, spec_duration
from herald.core.contents import Content
from herald.core.envelopes import SendLimits
from herald.core.statuses import Preview

__all__ = ["DEFAULT_VARIANT", "preview", "rate_in_force", "stars_cost", "variant_counts"]

# The name of the default text and buttons among status.preview.variants.
DEFAULT_VARIANT = "default"
# Rates are rounded up to this step, so a spread never ends after its duration.
_RATE_STEP = 1000


def rate_in_force(*, rate: Rate, limits: SendLimits | None, recipients: int | None) -> float:
    """Messages per second to pace at. ``recipients`` None: the audience is not counted yet,
    so a spread cannot be computed (the caller holds the sends until it is)."""
    cap = float(rate.messages_per_second)
    if limits is not None:
        bot = limits.paid_messages_per_second if rate.allow_paid_broadcast else None
        cap = min(cap, bot or limits.messages_per_second)
    spread = rate.spread
    if spread is not None and recipients:
        per_second = math.ceil(recipients / spread.total_seconds() * _RATE_STEP) / _RATE_STEP
        cap = min(cap, per_second)
    return cap


def stars_cost(*, rate: Rate, recipients: int) -> int | None:
    """Most Stars a paid broadcast to ``recipients`` costs (0.1 Star a message, rounded up);
    None for a free one."""
    if not rate.allow_paid_broadcast:
        return None
    return math.ceil(recipients / MESSAGES_PER_STAR)


def variant_counts(content: Content, languages: Mapping[str | None, int]) -> dict[str, int]:
    """Recipients per content variant, from recipients per Telegram language (None: unknown
    or not a subscriber), choosing the variant as the renderer does
    (:meth:`~herald.core.contents.Content.variant_for`)."""
    counts: dict[str, int] = {}
    for language, n in languages.items():
        variant = content.variant_for(language)
        key = DEFAULT_VARIANT
        if variant is not None and language is not None:
            code = language.lower()
            key = code if content.localized and code in content.localized else code.split("-")[0]
        counts[key] = counts.get(key, 0) + n
    return dict(sorted(counts.items()))


def preview(
    *,
    content: Content,
    rate: Rate,
    limits: SendLimits | None,
    languages: Mapping[str | None, int],
    now: datetime,
) -> Preview:
    """What sending would do, from recipients counted per Telegram language."""
    recipients = sum(languages.values())
    per_second = rate_in_force(rate=rate, limits=limits, recipients=recipients)
    return Preview(
        recipients=recipients,
        variants=variant_counts(content, languages),
        messages_per_second=per_second,
        estimated_duration=spec_duration(recipients / per_second),
        stars=stars_cost(rate=rate, recipients=recipients),
        generated_at=now.replace(microsecond=0),
    )
