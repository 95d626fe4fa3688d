"""Refused calls are recorded with what the client was told and when, so a test can check
that a client waited out every retry_after it was given."""

from __future__ import annotations

import aiohttp
import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramForbiddenError, TelegramRetryAfter

from herald.emulator import EmulatorClient, RunningEmulator
from herald.emulator.clocks import ManualClock
from herald.emulator.emulating import EmulatorState
from herald.emulator.settings import EmulatorConfig, Limits

TOKEN = "123:abc"


def test_refusals_carry_time_retry_after_and_chat(clock: ManualClock) -> None:
    state = EmulatorState(
        EmulatorConfig(limits=Limits(rate=1, per_chat_rate=0), blocked={5}), clock=clock
    )
    assert state.call(TOKEN, "sendMessage", {"chat_id": 1, "text": "a"}).status == 200
    clock.advance(0.25)
    assert state.call(TOKEN, "sendMessage", {"chat_id": 2, "text": "b"}).status == 429
    clock.advance(1.0)
    assert state.call(TOKEN, "sendMessage", {"chat_id": 5, "text": "c"}).status == 403
    assert state.call("no-token", "getMe", {}).status == 401

    flood, blocked, unauthorized = state.recorder.refusals()
    assert (flood.method, flood.chat_id, flood.status, flood.retry_after) == (
        "sendMessage",
        2,
        429,
        1,
    )
    assert flood.monotonic == 1000.25
    assert "Too Many Requests" in flood.description
    assert (blocked.chat_id, blocked.status, blocked.retry_after) == (5, 403, None)
    assert blocked.monotonic == 1001.25
    assert (unauthorized.token, unauthorized.method, unauthorized.chat_id) == (
        "no-token",
        "getMe",
        None,
    )
    assert state.recorder.refusals(status=429) == [flood]
    assert state.recorder.refusals(token="no-token") == [unauthorized]
    # The summary's error counts are the same refusals, counted.
    assert state.recorder.summary().errors == {429: 1, 403: 1, 401: 1}


def test_a_reset_forgets_refusals(clock: ManualClock) -> None:
    state = EmulatorState(clock=clock)
    state.configure({"faults": {"storm": {"retry_after": 3, "seconds": 10}}})
    assert state.call(TOKEN, "sendMessage", {"chat_id": 1, "text": "a"}).status == 429
    state.reset()
    assert state.recorder.refusals() == []


async def test_refusals_over_http(bot: Bot, control: EmulatorClient) -> None:
    await control.configure({"blocked": [5]})
    await control.configure({"faults": {"storm": {"retry_after": 9, "seconds": 60}}})
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(42, "x")
    await control.configure({"faults": {"storm": None}})
    with pytest.raises(TelegramForbiddenError):
        await bot.send_message(5, "x")

    floods = await control.refusals(status=429)
    assert [(r.chat_id, r.retry_after, r.method) for r in floods] == [(42, 9, "sendMessage")]
    everything = await control.refusals(token="123456:test-token")
    assert [r.status for r in everything] == [429, 403]
    assert everything[0].wall <= everything[1].wall
    assert await control.refusals(method="getMe") == []


async def test_a_bad_status_filter_is_a_readable_400(emulator: RunningEmulator) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{emulator.url}/_emulator/refusals", params={"status": "many"}) as answer,
    ):
        assert answer.status == 400
        assert await answer.json() == {"error": "status must be an integer"}
