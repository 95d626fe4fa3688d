"""A Telegram Bot API emulator that enforces Telegram's limits and checks each request as
Telegram would, for tests and the demo; docs/emulator.md lists every check."""

from herald.emulator.clients import EmulatorClient
from herald.emulator.clocks import ManualClock
from herald.emulator.emulating import EmulatorState, Reply
from herald.emulator.errors import ApiError
from herald.emulator.recording import SENDING_METHODS, RecordedMessage, Refusal, Summary
from herald.emulator.server import RunningEmulator, build_app, run_emulator
from herald.emulator.settings import EmulatorConfig, Faults, Limits, Storm

__all__ = [
    "SENDING_METHODS",
    "ApiError",
    "EmulatorClient",
    "EmulatorConfig",
    "EmulatorState",
    "Faults",
    "Limits",
    "ManualClock",
    "RecordedMessage",
    "Refusal",
    "Reply",
    "RunningEmulator",
    "Storm",
    "Summary",
    "build_app",
    "run_emulator",
]
