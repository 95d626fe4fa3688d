"""The token key ring of a dev stack or a test run (HERALD_TOKEN_KEYS), and sealing with it
for harness code that writes control records itself."""

from __future__ import annotations

import os
from pathlib import Path

from herald.core import sealing

__all__ = ["seal", "token_keys"]

_TOKEN_KEYS: list[str] = []


def token_keys(folder: Path | None = None) -> str:
    """The token key ring components of a dev stack or a test run share: HERALD_TOKEN_KEYS
    when set; else the one kept in ``folder`` (made on first use, so a stack that comes
    back opens the records it wrote before); else one made once per process."""
    if configured := os.environ.get("HERALD_TOKEN_KEYS"):
        return configured
    if folder is not None:
        path = folder / "token-keys"
        if not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            path.write_text(sealing.generate_key("dev") + "\n")
            path.chmod(0o600)
        return path.read_text().strip()
    if not _TOKEN_KEYS:
        _TOKEN_KEYS.append(sealing.generate_key("dev"))
    return _TOKEN_KEYS[0]


def seal(token: str, *, bound_to: str) -> str:
    """``token`` sealed as the operator seals it, under :func:`token_keys`."""
    return sealing.KeyRing.parse(token_keys()).seal(token, bound_to=bound_to)
