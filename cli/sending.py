"""A test send: the Broadcast's message to a few chats, rendered and sent exactly as the
senders do (:mod:`herald.telegram.rendering`,
:class:`herald.telegram.client.TelegramClient`), and nothing else: no ledger row, no work
message, no status change."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from pydantic import SecretStr

from herald.cli.views import SendResult
from herald.core.broadcasts import Broadcast
from herald.core.envelopes import Recipient
from herald.telegram import rendering
from herald.telegram.client import TelegramClient
from herald.telegram.outcomes import OutcomeKind

__all__ = ["send_test_message"]

# One request at a time: a handful of chats, and a 429 would only be answered by waiting.
_CONNECTIONS = 1
# A Broadcast not (yet) in the cluster has no uid: its callback buttons name none, and the
# bot answers their presses as those of a broadcast that is gone.
_NO_BROADCAST = str(uuid.UUID(int=0))


async def send_test_message(
    broadcast: Broadcast,
    *,
    token: SecretStr,
    chat_ids: Sequence[int],
    language: str | None,
    api_url: str,
    request_timeout: float,
) -> list[SendResult]:
    """Send to each chat once, in order, and say what became of each."""
    telegram = TelegramClient(
        token.get_secret_value(), api_url=api_url, timeout=request_timeout, connections=_CONNECTIONS
    )
    results = []
    try:
        for chat_id in dict.fromkeys(chat_ids):  # each chat once, in the order given
            # Never a paid broadcast: a few test messages stay far below the free rate.
            rendered = rendering.render(
                broadcast.spec.content,
                Recipient(chat_id=chat_id, language_code=language),
                # A Broadcast read from the cluster has its uid; presses on a test send's
                # callback buttons are answered and counted for it like any other.
                broadcast_uid=broadcast.metadata.uid or _NO_BROADCAST,
                allow_paid_broadcast=False,
            )
            outcome = await telegram.send(rendered)
            results.append(
                SendResult(
                    chat_id=chat_id,
                    ok=outcome.kind is OutcomeKind.OK,
                    message_id=outcome.message_id,
                    error=outcome.description or str(outcome.kind),
                )
            )
    finally:
        await telegram.close()
    return results
