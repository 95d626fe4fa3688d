"""The loop most bots run: one send at a time, 1/30 s apart, sleeping on 429.

    python bench/_naive.py --api URL --token TOKEN --first 1 --count 1500 --done FILE [--rate 30]

With ``--rate`` the sleep is 1/rate; its sends never ask for paid broadcasts, as most bots'.

It keeps no progress: started again after a crash, it starts the list again.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from _bots import make_bot, send_retrying, wait_for_stop


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--first", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--done", type=Path, required=True)
    parser.add_argument("--rate", type=float, default=30.0)
    args = parser.parse_args()
    bot = make_bot(args.api, args.token)
    try:
        for chat_id in range(args.first, args.first + args.count):
            await send_retrying(bot, chat_id)
            await asyncio.sleep(1 / args.rate)
    finally:
        await bot.session.close()
    await wait_for_stop(args.done)


if __name__ == "__main__":
    asyncio.run(main())
