"""Callback data of the bot's inline buttons: built and parsed here, and nowhere else.

Telegram returns at most 64 bytes of ``callback_data``. Buttons on status messages carry the
Broadcast they act on, so the data is ``b:<action>:<ref>``; the creation dialog's buttons carry
one choice each, ``n:<step>:<value>``. Parsing never trusts the data: a button from an older
version of the bot, or forged by a client, parses to ``None`` and is ignored.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

__all__ = [
    "AUDIENCE_ALL",
    "CALLBACK_DATA_MAX_BYTES",
    "BroadcastAction",
    "BroadcastButton",
    "BroadcastRef",
    "DialogButton",
    "DialogStep",
    "parse_broadcast_button",
    "parse_dialog_button",
]

CALLBACK_DATA_MAX_BYTES = 64
# Kubernetes object names (DNS subdomains) and namespace names (DNS labels).
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True, kw_only=True)
class BroadcastRef:
    """A Broadcast by namespace and name, written ``name`` in the bot's own namespace and
    ``namespace/name`` elsewhere."""

    namespace: str
    name: str

    @classmethod
    def parse(cls, text: str, *, default_namespace: str) -> BroadcastRef | None:
        """``name`` or ``namespace/name`` as an admin types it; ``None`` if it is neither."""
        namespace, sep, name = text.strip().rpartition("/")
        if not sep:
            namespace = default_namespace
        if not _NAMESPACE.match(namespace) or not _NAME.match(name) or len(name) > 253:
            return None
        return cls(namespace=namespace, name=name)

    def label(self, *, default_namespace: str) -> str:
        """The shortest form that names this Broadcast unambiguously for the bot."""
        if self.namespace == default_namespace:
            return self.name
        return f"{self.namespace}/{self.name}"


class BroadcastAction(enum.StrEnum):
    """What a button on a status message asks for."""

    PAUSE = "p"
    RESUME = "r"
    REFRESH = "f"
    CANCEL = "c"  # asks for confirmation
    CANCEL_CONFIRM = "y"
    CANCEL_ABORT = "n"


@dataclass(frozen=True, kw_only=True)
class BroadcastButton:
    action: BroadcastAction
    ref: BroadcastRef

    def pack(self, *, default_namespace: str) -> str | None:
        """The callback data, or ``None`` when the reference does not fit in 64 bytes (a
        very long name): such a status message simply has no buttons, commands still work."""
        data = f"b:{self.action.value}:{self.ref.label(default_namespace=default_namespace)}"
        if len(data.encode()) > CALLBACK_DATA_MAX_BYTES:
            return None
        return data


def parse_broadcast_button(data: str, *, default_namespace: str) -> BroadcastButton | None:
    prefix, _, rest = data.partition(":")
    code, _, label = rest.partition(":")
    if prefix != "b" or not label:
        return None
    try:
        action = BroadcastAction(code)
    except ValueError:
        return None
    ref = BroadcastRef.parse(label, default_namespace=default_namespace)
    if ref is None:
        return None
    return BroadcastButton(action=action, ref=ref)


class DialogStep(enum.StrEnum):
    """The choices of the creation dialog, in the order they are asked."""

    AUDIENCE = "a"  # value: "all" or a language code
    RATE = "r"  # value: messages per second
    CONFIRM = "c"  # value: "yes" or "no"


AUDIENCE_ALL = "all"
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8}){0,2}$")


@dataclass(frozen=True, kw_only=True)
class DialogButton:
    step: DialogStep
    value: str

    def pack(self) -> str:
        data = f"n:{self.step.value}:{self.value}"
        if len(data.encode()) > CALLBACK_DATA_MAX_BYTES:
            raise ValueError(f"callback data {data!r} is longer than 64 bytes")
        return data

    @property
    def rate(self) -> int | None:
        """The chosen messages per second, for a RATE button."""
        if self.step is DialogStep.RATE and self.value.isdigit():
            return int(self.value)
        return None

    @property
    def confirmed(self) -> bool:
        return self.step is DialogStep.CONFIRM and self.value == "yes"


def parse_dialog_button(data: str) -> DialogButton | None:
    prefix, _, rest = data.partition(":")
    code, _, value = rest.partition(":")
    if prefix != "n" or not value:
        return None
    try:
        step = DialogStep(code)
    except ValueError:
        return None
    valid = {
        DialogStep.AUDIENCE: value == AUDIENCE_ALL or _LANGUAGE.match(value) is not None,
        DialogStep.RATE: value.isdigit() and 0 < int(value) <= 1000,
        DialogStep.CONFIRM: value in ("yes", "no"),
    }[step]
    return DialogButton(step=step, value=value) if valid else None
