"""Settings come from HERALD_* variables and never print a secret."""

from __future__ import annotations

import pytest

from herald.core.settings import DatabaseSettings, NatsSettings, TelegramSettings


def test_defaults_point_at_local_services_and_real_telegram(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HERALD_NATS_URL", "HERALD_DATABASE_URL", "HERALD_TELEGRAM_API_URL"):
        monkeypatch.delenv(name, raising=False)
    assert NatsSettings().url == "nats://127.0.0.1:4222"
    assert TelegramSettings().api_url == "https://api.telegram.org"


def test_variables_override_and_secrets_stay_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERALD_DATABASE_URL", "postgresql://u:hunter2@db/herald")
    monkeypatch.setenv("HERALD_NATS_URL", "nats://nats:4222")
    monkeypatch.setenv("HERALD_TELEGRAM_API_URL", "http://emulator:8081")
    database = DatabaseSettings()
    assert database.url.get_secret_value() == "postgresql://u:hunter2@db/herald"
    assert "hunter2" not in repr(database)
    assert "hunter2" not in str(database)
    assert NatsSettings().url == "nats://nats:4222"
    assert TelegramSettings().api_url == "http://emulator:8081"
