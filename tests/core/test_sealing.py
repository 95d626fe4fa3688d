"""The token key ring: parsing with clear errors, sealing, rotation."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from herald.core.sealing import KeyRing, SealError, generate_key
from herald.core.settings import TokenKeySettings


def test_the_first_key_seals_and_every_key_opens() -> None:
    old, new = generate_key("k1"), generate_key("k2")
    before = KeyRing.parse(old)
    sealed = before.seal("123:abc", bound_to="x")
    assert sealed.startswith("k1.")
    # Rotation, step two: the new key first, the old one kept to open what it sealed.
    after = KeyRing.parse(f"{new},{old}")
    assert after.open(sealed, bound_to="x") == "123:abc"
    assert after.seal("123:abc", bound_to="x").startswith("k2.")
    assert after.seal("123:abc", bound_to="x") != after.seal("123:abc", bound_to="x")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("nokey", "<id>:<base64 of 32 bytes>"),
        ("k1:!!!", "not valid base64"),
        (f"k1:{base64.b64encode(b'short').decode()}", "has 5 bytes; AES-256 takes 32"),
        (f"{generate_key('k1')},{generate_key('k1')}", "appears twice"),
    ],
)
def test_a_bad_ring_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(SealError, match=message):
        KeyRing.parse(text)


def test_a_component_without_a_key_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HERALD_TOKEN_KEYS", raising=False)
    monkeypatch.delenv("HERALD_TOKEN_KEYS_FILE", raising=False)
    with pytest.raises(SealError, match="herald token-key"):
        TokenKeySettings().ring()


def test_the_ring_is_read_from_a_mounted_file(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"# rotated 2026-12-01\n{generate_key('k2')}\n{generate_key('k1')}\n")
    assert TokenKeySettings(keys_file=path).ring().primary == "k2"


def test_herald_token_key_prints_a_key_the_ring_reads() -> None:
    from click.testing import CliRunner  # noqa: PLC0415

    from herald.dev.cli import cli  # noqa: PLC0415

    printed = CliRunner().invoke(cli, ["token-key", "--id", "k7"])
    assert printed.exit_code == 0, printed.output
    assert KeyRing.parse(printed.output).primary == "k7"
    refused = CliRunner().invoke(cli, ["token-key", "--id", "not an id"])
    assert refused.exit_code != 0
    assert "<id>:<base64 of 32 bytes>" in refused.output
