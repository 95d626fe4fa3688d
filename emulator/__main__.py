"""``herald-emulator``: serve the Bot API emulator until SIGTERM or Ctrl-C."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from typing import Any

import click

from herald.core import loops
from herald.emulator.server import run_emulator
from herald.emulator.settings import EmulatorConfig, Faults, Limits

log = logging.getLogger("herald.emulator")


def _freeze_survivors(phase: str, info: dict[str, Any]) -> None:
    # The emulator keeps every message it accepted, so its heap only grows, and each full
    # collection walked all of it: at the paid rate, pauses of 0.2-0.5 s, after which the
    # requests queued meanwhile were read at once and counted as arriving together (a 429
    # the sender did not cause). What survives a full collection is kept for good: frozen,
    # the next full collection walks only what came since.
    if phase == "stop" and info["generation"] == 2:
        gc.freeze()


def _chat_ids(
    context: click.Context, parameter: click.Parameter, value: str | None
) -> frozenset[int]:
    try:
        return frozenset(int(part) for part in (value or "").split(",") if part.strip())
    except ValueError:
        raise click.BadParameter("expected comma-separated chat ids") from None


def _posts(
    context: click.Context, parameter: click.Parameter, value: tuple[str, ...]
) -> dict[int, frozenset[int]]:
    posts: dict[int, set[int]] = {}
    for each in value:
        chat, _, message = each.partition(":")
        try:
            posts.setdefault(int(chat), set()).add(int(message))
        except ValueError:
            raise click.BadParameter(f"{each!r}: expected CHAT_ID:MESSAGE_ID") from None
    return {chat: frozenset(messages) for chat, messages in posts.items()}


@click.command("herald-emulator", context_settings={"show_default": True})
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=8081, type=int, help="0 picks a free port.")
@click.option("--latency-ms", default=0.0, type=float, help="Added to every Bot API request.")
@click.option("--jitter-ms", default=0.0, type=float, help="Random extra latency, up to this.")
@click.option("--rate", default=30, type=int, help="Sends/s per bot token; 0 = no limit.")
@click.option("--paid-rate", default=1000, type=int, help="Same, with allow_paid_broadcast.")
@click.option("--per-chat-rate", default=1, type=int, help="Sends/s per chat; 0 = no limit.")
@click.option("--error-ratio", default=0.0, type=click.FloatRange(0, 1), help="Sends failing 5xx.")
@click.option(
    "--drop-ratio", default=0.0, type=click.FloatRange(0, 1), help="Sends delivered, unanswered."
)
@click.option("--seed", default=None, type=int, help="Seed for fault and latency draws.")
@click.option("--blocked", callback=_chat_ids, help="Chat ids answering 403 blocked.")
@click.option("--deactivated", callback=_chat_ids, help="Chat ids answering 403 deactivated.")
@click.option("--not-found", callback=_chat_ids, help="Chat ids answering 400 chat not found.")
@click.option(
    "--post",
    "posts",
    multiple=True,
    callback=_posts,
    metavar="CHAT_ID:MESSAGE_ID",
    help="A message that exists without the emulator having sent it (a channel's post), "
    "for copyMessage. Repeatable.",
)
def _command(
    *,
    host: str,
    port: int,
    latency_ms: float,
    jitter_ms: float,
    rate: int,
    paid_rate: int,
    per_chat_rate: int,
    error_ratio: float,
    drop_ratio: float,
    seed: int | None,
    blocked: frozenset[int],
    deactivated: frozenset[int],
    not_found: frozenset[int],
    posts: dict[int, frozenset[int]],
) -> None:
    """A Telegram Bot API emulator that enforces Telegram's limits."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config = EmulatorConfig(
        limits=Limits(rate=rate, paid_rate=paid_rate, per_chat_rate=per_chat_rate),
        faults=Faults(
            error_ratio=error_ratio,
            drop_ratio=drop_ratio,
            latency_ms=latency_ms,
            jitter_ms=jitter_ms,
        ),
        blocked=blocked,
        deactivated=deactivated,
        not_found=not_found,
        posts=posts,
        seed=seed,
    )
    gc.callbacks.append(_freeze_survivors)
    loops.run(_serve(config, host, port))


def main() -> None:
    _command()


async def _serve(config: EmulatorConfig, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with run_emulator(config, host=host, port=port) as emulator:
        log.info("emulator listening on %s", emulator.url)
        await stop.wait()
    log.info("emulator stopped")


if __name__ == "__main__":
    main()
