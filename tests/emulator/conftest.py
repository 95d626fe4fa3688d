"""Fixtures for the emulator's tests: a fake clock for the pure logic, and a real server
with a real aiogram Bot for the HTTP contract."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from herald.emulator import EmulatorClient, EmulatorConfig, Limits, RunningEmulator, run_emulator
from herald.emulator.clocks import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def emulator() -> AsyncIterator[RunningEmulator]:
    # Generous limits: tests that exercise the limits set their own.
    config = EmulatorConfig(limits=Limits(rate=1000, per_chat_rate=1000))
    async with run_emulator(config) as running:
        yield running


@pytest.fixture
async def bot(emulator: RunningEmulator) -> AsyncIterator[Bot]:
    session = AiohttpSession(api=TelegramAPIServer.from_base(emulator.url))
    bot = Bot("123456:test-token", session=session)
    try:
        yield bot
    finally:
        await bot.session.close()


@pytest.fixture
async def control(emulator: RunningEmulator) -> AsyncIterator[EmulatorClient]:
    async with EmulatorClient(emulator.url) as client:
        yield client
