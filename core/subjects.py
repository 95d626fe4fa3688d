"""Names on the NATS side, defined once: streams, subjects, consumers and KV keys.

Broadcasts are keyed by their Kubernetes uid, which is unique across namespaces and never
reused, so a Broadcast deleted and re-created under the same name never sees old work.
"""

from __future__ import annotations

__all__ = [
    "BOT_RECORDS",
    "COMPLETIONS_SUBJECT",
    "CONTROL_BUCKET",
    "EVENTS_STREAM",
    "MESSAGES_STREAM",
    "MESSAGES_SUBJECTS",
    "WORK_STREAM",
    "WORK_SUBJECTS",
    "bot_halt_key",
    "bot_id_of",
    "bot_lease_key",
    "bot_record_key",
    "bot_spend_key",
    "bot_traffic_key",
    "control_key",
    "fault_key",
    "message_consumer",
    "message_subject",
    "outcome_subject",
    "work_consumer",
    "work_subject",
]

WORK_STREAM = "HERALD_WORK"
WORK_SUBJECTS = "herald.work.>"
EVENTS_STREAM = "HERALD_EVENTS"
COMPLETIONS_SUBJECT = "herald.events.completed"
CONTROL_BUCKET = "herald-control"
# Transactional messages, one subject per bot; their outcomes are announced outside any
# stream (herald.outcomes.<bot id>), since the messages table keeps them.
MESSAGES_STREAM = "HERALD_MESSAGES"
MESSAGES_SUBJECTS = "herald.messages.>"
# Every key of bot_record_key: Bot names may hold dots, so not bot.*.*.
BOT_RECORDS = "bot.>"


def work_subject(uid: str) -> str:
    return f"herald.work.{uid}"


def work_consumer(uid: str) -> str:
    return f"work-{uid}"


def message_subject(bot_id: str) -> str:
    """The bot's queue of transactional messages."""
    return f"herald.messages.{bot_id}"


def message_consumer(bot_id: str) -> str:
    """The durable consumer the lease holder of the bot pulls transactional messages from."""
    return f"messages-{bot_id}"


def outcome_subject(bot_id: str) -> str:
    """Where the sender announces that a transactional message of the bot reached its end."""
    return f"herald.outcomes.{bot_id}"


def control_key(uid: str) -> str:
    """The broadcast's control record, written by the operator, watched by senders."""
    return f"broadcast.{uid}"


def fault_key(uid: str) -> str:
    """A sender's report that a broadcast cannot go on (e.g. content rejected by Telegram)."""
    return f"fault.{uid}"


def bot_halt_key(bot_id: str) -> str:
    """Until when every replica must leave the bot alone after a 429."""
    return f"halt.{bot_id}"


def bot_lease_key(bot_id: str) -> str:
    """Which sender replica currently sends for the bot."""
    return f"lease.{bot_id}"


def bot_spend_key(bot_id: str) -> str:
    """The bot's paid messages of the current UTC day, against its daily Stars budget."""
    return f"spend.{bot_id}"


def bot_traffic_key(bot_id: str) -> str:
    """When herald-api last took a transactional message for the bot."""
    return f"traffic.{bot_id}"


def bot_record_key(namespace: str, name: str) -> str:
    """A verified Bot as the admin bot serves it, written by the operator."""
    return f"bot.{namespace}.{name}"


def bot_id_of(token: str) -> str:
    """The bot's numeric id: the public part of its token, before the colon."""
    head, sep, _ = token.partition(":")
    if not sep or not head.isdigit():
        raise ValueError("a bot token looks like <digits>:<secret>")
    return head
