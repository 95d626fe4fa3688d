"""What the other designs share in their sending processes: an aiogram bot pointed at the
emulator, "sleep retry_after and try again" on 429, and a done marker for the benchmark.

Imports aiogram only, so the processes measured carry no Herald code.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramRetryAfter

__all__ = ["make_bot", "send_retrying", "text_for", "wait_for_stop"]


def make_bot(api_url: str, token: str) -> Bot:
    return Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(api_url)))


def text_for(chat_id: int) -> str:
    # The same message Herald's side renders from "Hello <b>{first_name}</b>".
    return f"Hello <b>User{chat_id}</b>"


async def send_retrying(bot: Bot, chat_id: int) -> None:
    """What the designs do on 429: sleep as long as Telegram asks, then send again."""
    while True:
        try:
            await bot.send_message(chat_id, text_for(chat_id), parse_mode="HTML")
        except TelegramRetryAfter as error:
            await asyncio.sleep(error.retry_after)
        else:
            return


async def wait_for_stop(done: Path) -> None:
    """Mark the work done, then stay alive until SIGTERM, so the benchmark reads this
    process's final CPU time and memory before it goes."""
    await asyncio.to_thread(done.write_text, "done\n")
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
