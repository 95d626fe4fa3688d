"""Callback data of the bot's inline buttons: built and parsed here, and nowhere else.

Through aiogram's :class:`~aiogram.filters.callback_data.CallbackData` factory, which packs
fields as ``<prefix>:<field>:...`` and refuses more than Telegram's 64 bytes. Buttons on
status messages carry the Broadcast they act on, ``b:<action>:<ref>``; the creation dialog's
buttons carry one choice each, ``n:<step>:<value>``. Parsing never trusts the data: a button
from an older version of the bot, or forged by a client, parses to ``None`` and is ignored.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Self

from aiogram.filters.callback_data import MAX_CALLBACK_LENGTH, CallbackData
from pydantic import ConfigDict, model_validator

from herald.core.broadcasts import PAID_MESSAGES_PER_SECOND

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

CALLBACK_DATA_MAX_BYTES = MAX_CALLBACK_LENGTH
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


class _BroadcastData(CallbackData, prefix="b"):
    action: BroadcastAction
    target: str  # BroadcastRef.label: the namespace is implied when it is the bot's own


@dataclass(frozen=True, kw_only=True)
class BroadcastButton:
    action: BroadcastAction
    ref: BroadcastRef

    def pack(self, *, default_namespace: str) -> str | None:
        """The callback data, or ``None`` when the reference does not fit in 64 bytes (a
        very long name): such a status message simply has no buttons, commands still work."""
        target = self.ref.label(default_namespace=default_namespace)
        try:
            return _BroadcastData(action=self.action, target=target).pack()
        except ValueError:
            return None


def parse_broadcast_button(data: str, *, default_namespace: str) -> BroadcastButton | None:
    try:
        unpacked = _BroadcastData.unpack(data)
    except (TypeError, ValueError):
        return None
    ref = BroadcastRef.parse(unpacked.target, default_namespace=default_namespace)
    if ref is None:
        return None
    return BroadcastButton(action=unpacked.action, ref=ref)


class DialogStep(enum.StrEnum):
    """The choices of the creation dialog, in the order they are asked."""

    AUDIENCE = "a"  # value: "all" or a language code
    RATE = "r"  # value: messages per second
    CONFIRM = "c"  # value: "yes" or "no"


AUDIENCE_ALL = "all"
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8}){0,2}$")
_RATE_MAX = PAID_MESSAGES_PER_SECOND


class DialogButton(CallbackData, prefix="n"):
    """One choice of the creation dialog; a value that does not fit its step is refused."""

    model_config = ConfigDict(frozen=True)

    step: DialogStep
    value: str

    @model_validator(mode="after")
    def _value_fits_the_step(self) -> Self:
        value = self.value
        valid = {
            DialogStep.AUDIENCE: value == AUDIENCE_ALL or _LANGUAGE.match(value) is not None,
            DialogStep.RATE: value.isdigit() and 0 < int(value) <= _RATE_MAX,
            DialogStep.CONFIRM: value in ("yes", "no"),
        }[self.step]
        if not valid:
            raise ValueError(f"{value!r} is not a choice of the {self.step.name} step")
        return self

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
    try:
        return DialogButton.unpack(data)
    except (TypeError, ValueError):
        return None
