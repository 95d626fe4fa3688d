"""Settings come from HERALD_* variables and never print a secret."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

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


def _nats(**fields: object) -> NatsSettings:
    # Validated from the fields alone: no variable of the shell (a sourced .herald/dev/env)
    # leaks in.
    return NatsSettings.model_validate(fields)


@pytest.fixture
def clean_nats_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in NatsSettings.model_fields:
        monkeypatch.delenv(f"HERALD_NATS_{name.upper()}", raising=False)


@pytest.mark.usefixtures("clean_nats_env")
def test_a_cluster_is_a_comma_separated_list_and_one_url_still_works() -> None:
    assert _nats(url="nats://a:4222, nats://b:4222,tls://c:4222").servers == [
        "nats://a:4222",
        "nats://b:4222",
        "tls://c:4222",
    ]
    assert _nats(url="nats://nats:4222").servers == ["nats://nats:4222"]
    assert NatsSettings().servers == ["nats://127.0.0.1:4222"]


@pytest.mark.usefixtures("clean_nats_env")
def test_credentials_come_from_variables_and_stay_masked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HERALD_NATS_USER", "sender")
    monkeypatch.setenv("HERALD_NATS_PASSWORD", "hunter2")
    monkeypatch.setenv("HERALD_NATS_TLS_CA_FILE", "/etc/herald/nats/ca.crt")
    settings = NatsSettings()
    assert settings.user == "sender"
    assert settings.password is not None
    assert settings.password.get_secret_value() == "hunter2"
    assert str(settings.tls_ca_file) == "/etc/herald/nats/ca.crt"
    assert "hunter2" not in repr(settings)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param(
            {"user": "bot"}, "HERALD_NATS_USER is set without HERALD_NATS_PASSWORD", id="user-alone"
        ),
        pytest.param(
            {"password": "pw"},
            "HERALD_NATS_PASSWORD is set without HERALD_NATS_USER",
            id="password-alone",
        ),
        pytest.param(
            {"user": "bot", "password": "pw", "token": "t"},
            "HERALD_NATS_USER and HERALD_NATS_TOKEN are set together",
            id="user-and-token",
        ),
        pytest.param(
            {"token": "t", "creds_file": "/x.creds"},
            "HERALD_NATS_TOKEN and HERALD_NATS_CREDS_FILE are set together",
            id="token-and-creds",
        ),
        pytest.param(
            {"nkey_seed_file": "/seed", "creds_file": "/x.creds"},
            "HERALD_NATS_NKEY_SEED_FILE and HERALD_NATS_CREDS_FILE are set together",
            id="nkey-and-creds",
        ),
        pytest.param(
            {"url": "nats://a:pw@nats:4222", "token": "t"},
            "HERALD_NATS_URL carries credentials and HERALD_NATS_TOKEN is set too",
            id="credentials-twice",
        ),
        pytest.param(
            {"tls_cert_file": "/c.crt"},
            "HERALD_NATS_TLS_CERT_FILE is set without HERALD_NATS_TLS_KEY_FILE",
            id="cert-without-key",
        ),
        pytest.param(
            {"tls_key_file": "/c.key"},
            "HERALD_NATS_TLS_KEY_FILE is set without HERALD_NATS_TLS_CERT_FILE",
            id="key-without-cert",
        ),
        pytest.param({"url": "nats://a:4222,,nats://b:4222"}, "no empty entry", id="empty-url"),
    ],
)
def test_combinations_that_cannot_work_are_refused_with_a_reason(
    fields: dict[str, str], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        _nats(**fields)


def test_credentials_in_the_url_alone_still_work() -> None:
    assert _nats(url="nats://admin:pw@127.0.0.1:4222").user is None
