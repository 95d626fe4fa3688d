"""Long polling of one bot, for as long as the process serves it.

aiogram's ``Dispatcher.start_polling(bot1, bot2, ...)`` polls a fixed set of bots: the set
cannot change while it runs, and one dispatcher runs it once at a time, so a Bot added,
removed or given a new token would stop every bot's polling and start it again, and each
would then be sent its last batch of updates a second time (the offset that confirms them is
a local of aiogram's polling loop). Here each bot has its own loop, started and stopped on
its own, with the same steps as aiogram's (getUpdates with a long timeout, backoff on any
error, the offset moved past every update handed on), the offset kept by the caller so a
restart of the same bot goes on where it stopped.

An update is handed to ``admit``, which returns once the update may run (the process's bound
on updates in flight) and runs it in the background; the loop asks Telegram for more only
then, so a full process reads no more than it can handle.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping, Sequence

from aiogram import Bot
from aiogram.dispatcher.dispatcher import DEFAULT_BACKOFF_CONFIG
from aiogram.methods import GetUpdates
from aiogram.types import Update
from aiogram.utils.backoff import Backoff, BackoffConfig

__all__ = ["POLL_SECONDS", "poll"]

logger = logging.getLogger(__name__)

# Telegram holds a getUpdates this long when there is nothing new; aiogram's default too.
POLL_SECONDS = 10


async def poll(
    bot: Bot,
    admit: Callable[[Update], Awaitable[None]],
    *,
    offsets: MutableMapping[int, int],
    allowed_updates: Sequence[str] | None,
    label: str,
    poll_seconds: int = POLL_SECONDS,
    backoff: BackoffConfig = DEFAULT_BACKOFF_CONFIG,
) -> None:
    """Poll until cancelled. ``offsets`` holds the next update id by bot id."""
    retry = Backoff(config=backoff)
    # Polling and a webhook exclude each other on Telegram's side.
    while True:
        try:
            await bot.delete_webhook(drop_pending_updates=False)
            break
        except Exception as exc:  # any failure is retried, as aiogram does
            logger.warning("%s: could not delete the webhook: %s", label, type(exc).__name__)
            await retry.asleep()
    retry.reset()
    request = GetUpdates(timeout=poll_seconds, allowed_updates=list(allowed_updates or ()) or None)
    # Longer than Telegram holds the request, so a quiet poll is not taken for a time-out.
    request_timeout = int(bot.session.timeout + poll_seconds) if bot.session.timeout else None
    logger.info("%s: polling for updates", label)
    failed = False
    while True:
        request.offset = offsets.get(bot.id)
        try:
            updates = await bot(request, request_timeout=request_timeout)
        except Exception as exc:  # Telegram away is waited out, never fatal
            failed = True
            logger.warning(
                "%s: getUpdates failed (%s), trying again in %.1f s",
                label,
                type(exc).__name__,
                retry.next_delay,
            )
            await retry.asleep()
            continue
        if failed:
            logger.info("%s: polling again", label)
            retry.reset()
            failed = False
        for update in updates:
            await admit(update)
            # Confirmed to Telegram by the next getUpdates.
            offsets[bot.id] = update.update_id + 1
