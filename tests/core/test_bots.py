"""The Bot contract as the models see it: defaults, and every rule with a readable message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from herald.core.bots import Bot, BotSpec, UpdatesMode

ROOT = Path(__file__).resolve().parents[2]
INVALID: list[dict[str, Any]] = yaml.safe_load(
    (ROOT / "tests" / "data" / "invalid-bots.yaml").read_text()
)


def test_the_example_bot_reads_and_defaults_are_telegram_s() -> None:
    bot = Bot.model_validate(yaml.safe_load((ROOT / "examples" / "bot.yaml").read_text()))
    assert bot.spec.token_secret_ref.key == "token"
    assert bot.spec.limits.paid.stars_per_day == 5000
    bare = BotSpec.model_validate({"tokenSecretRef": {"name": "t"}})
    assert bare.limits.messages_per_second == 30
    assert bare.limits.paid.enabled is False
    assert bare.updates.mode is UpdatesMode.POLLING
    assert bare.admins == ()


@pytest.mark.parametrize("case", INVALID, ids=[case["id"] for case in INVALID])
def test_an_invalid_bot_is_refused_with_a_readable_message(case: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as caught:
        BotSpec.model_validate(case["spec"])
    assert (case.get("model") or case["message"]) in str(caught.value)
