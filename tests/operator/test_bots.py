"""A Bot's Ready condition from what one reconcile observed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from herald.core.bots import BotReason
from herald.core.statuses import ConditionStatus
from herald.operator.bots import Observed, bot_status
from herald.operator.identities import Resolved
from herald.operator.planning import TokenState

NOW = datetime(2026, 1, 1, tzinfo=UTC)
FOUND = Resolved(
    state=TokenState.FOUND, token=SecretStr("1:x"), bot_id="123456", username="shop_bot"
)
SHORT = (BotReason.CALLBACK_SECRET_TOO_SHORT, "The callback secret in Secret 'cb' has 9 bytes")
MISSING = (BotReason.CALLBACK_SECRET_NOT_FOUND, "Secret 'cb' has no callback secret under 'k'")


@pytest.mark.parametrize(
    ("resolved", "webhook", "callback", "status", "reason", "says"),
    [
        pytest.param(FOUND, None, None, "True", "Verified", "@shop_bot", id="verified"),
        pytest.param(
            FOUND, None, MISSING, "False", "CallbackSecretNotFound", "spec.callbacks",
            id="callback-secret-missing",
        ),
        pytest.param(
            FOUND, None, SHORT, "False", "CallbackSecretTooShort", "9 bytes",
            id="callback-secret-too-short",
        ),
        pytest.param(
            FOUND, "Secret 'wh' has no webhook secret token", MISSING, "False",
            "WebhookSecretNotFound", "updates.mode webhook", id="the-webhook-first",
        ),
        pytest.param(
            Resolved(state=TokenState.SECRET_NOT_FOUND, detail="Secret 'shop' was not found"),
            None, MISSING, "False", "SecretNotFound", "was not found", id="the-token-first",
        ),
    ],
)  # fmt: skip
def test_ready(
    resolved: Resolved,
    webhook: str | None,
    callback: tuple[BotReason, str] | None,
    status: str,
    reason: str,
    says: str,
) -> None:
    seen = Observed(
        generation=3,
        resolved=resolved,
        webhook_secret_missing=webhook,
        callback_secret_problem=callback,
    )
    [ready] = bot_status(None, seen, now=NOW).conditions
    assert (ready.status, ready.reason) == (ConditionStatus(status), reason)
    assert says in ready.message
    assert ready.observed_generation == 3
