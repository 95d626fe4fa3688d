"""The keyword arguments of ``nats.connect`` built from the settings: pure, one case each."""

from __future__ import annotations

import inspect
import ssl
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client

from herald.core import natsconn
from herald.core.permissions import Component, inbox_prefix
from herald.core.settings import NatsSettings


def options(component: Component = Component.SENDER, **fields: str) -> dict[str, Any]:
    return natsconn.options(NatsSettings.model_validate(fields), component=component, name="n")


def test_every_option_is_one_nats_connect_takes() -> None:
    accepted = set(inspect.signature(Client.connect).parameters)
    context = ssl.create_default_context()
    built = natsconn.options(
        NatsSettings.model_validate({"user": "u", "password": "p", "tls_server_name": "nats"}),
        component=Component.BOT,
        name="herald-bot",
        tls=context,
        max_reconnect_attempts=-1,
    )
    assert set(built) <= accepted
    assert built["tls"] is context


def test_defaults_give_the_servers_the_name_and_the_components_own_inbox() -> None:
    assert options(Component.OPERATOR, url="nats://a:4222,nats://b:4222") == {
        "servers": ["nats://a:4222", "nats://b:4222"],
        "name": "n",
        "inbox_prefix": inbox_prefix(Component.OPERATOR),
    }


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param(
            {"user": "sender", "password": "pw"}, {"user": "sender", "password": "pw"}, id="user"
        ),
        pytest.param({"token": "t0k"}, {"token": "t0k"}, id="token"),
        pytest.param(
            {"nkey_seed_file": "/etc/nats/seed.nk"}, {"nkeys_seed": "/etc/nats/seed.nk"}, id="nkey"
        ),
        pytest.param(
            {"creds_file": "/etc/nats/sender.creds"},
            {"user_credentials": "/etc/nats/sender.creds"},
            id="creds",
        ),
        pytest.param(
            {"tls_server_name": "nats.internal"}, {"tls_hostname": "nats.internal"}, id="tls-name"
        ),
    ],
)
def test_each_identity_and_tls_setting_becomes_its_option(
    fields: dict[str, str], expected: dict[str, str]
) -> None:
    built = options(Component.SENDER, **fields)
    assert {key: built[key] for key in expected} == expected
    others = {"user", "password", "token", "nkeys_seed", "user_credentials", "tls_hostname"}
    assert not (others - set(expected)) & set(built)


def test_extra_options_are_passed_through_and_win() -> None:
    built = natsconn.options(
        NatsSettings(),
        component=Component.SENDER,
        name="herald-sender s-1",
        max_reconnect_attempts=-1,
        inbox_prefix="_INBOX_elsewhere",
    )
    assert built["max_reconnect_attempts"] == -1
    assert built["inbox_prefix"] == "_INBOX_elsewhere"
    assert built["name"] == "herald-sender s-1"


def test_no_tls_file_leaves_tls_to_nats_py() -> None:
    assert natsconn.tls_context(NatsSettings()) is None


def test_a_missing_tls_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "ca.crt"
    with pytest.raises(natsconn.NatsConfigError, match=f"HERALD_NATS_TLS_CA_FILE={missing}"):
        natsconn.tls_context(NatsSettings(tls_ca_file=missing))


async def test_a_missing_creds_file_is_named_before_connecting(tmp_path: Path) -> None:
    missing = tmp_path / "sender.creds"
    with pytest.raises(natsconn.NatsConfigError, match="HERALD_NATS_CREDS_FILE"):
        await natsconn.connect(
            NatsSettings(creds_file=missing), component=Component.SENDER, name="n"
        )


def test_the_inbox_prefixes_differ_per_component() -> None:
    prefixes = {inbox_prefix(component) for component in Component}
    assert len(prefixes) == len(Component)
    # Not below _INBOX.>, which a NATS admin may have granted to everyone.
    assert not any(prefix.startswith("_INBOX.") for prefix in prefixes)
