"""What each component may do on NATS, defined once: the subjects its NATS user may publish
to and subscribe to, each with the reason it is needed.

docs/nats.md shows these tables (``herald dev docs`` writes them), and the dev stack and every
test run nats-server with exactly these permissions (``herald.dev.nats``), so a component that
starts using a subject nobody granted fails its tests rather than a deployment.

JetStream is driven through subjects too: a stream, consumer or KV operation is a request to a
``$JS.API.<verb>.<stream>...`` subject, an ack a publish to the ``$JS.ACK...`` reply subject of
the message, a KV put a publish to ``$KV.<bucket>.<key>``. The grants name the stream, and the
consumer or key when the API subject carries it:

- a consumer created by name with one filter subject is requested on
  ``$JS.API.CONSUMER.CREATE.<stream>.<name>.<filter>``, so a grant can pin the filter; an
  unnamed one (nats-py's ``KeyValue.watch``) on ``$JS.API.CONSUMER.CREATE.<stream>``, which
  lets its holder read the whole stream;
- nats-py reads a KV key with ``$JS.API.STREAM.MSG.GET.<stream>`` (the whole bucket) unless
  the bucket allows direct gets, then with ``$JS.API.DIRECT.GET.<stream>.$KV.<bucket>.<key>``.

Replies (JetStream answers, publish acks, a push consumer's deliveries) come to the
component's own inbox prefix, :func:`inbox_prefix`, not the shared ``_INBOX.>``: a user allowed
to subscribe to ``_INBOX.>`` can read every reply in the account, the control records senders
read included.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from herald.core import subjects

__all__ = ["PERMISSIONS", "Component", "Grant", "Permissions", "inbox_prefix"]


class Component(enum.StrEnum):
    """A program with its own NATS user."""

    OPERATOR = "operator"
    SENDER = "sender"
    BOT = "bot"
    API = "api"


@dataclass(frozen=True)
class Grant:
    subject: str
    why: str


@dataclass(frozen=True)
class Permissions:
    publish: tuple[Grant, ...]
    subscribe: tuple[Grant, ...]


def inbox_prefix(component: Component) -> str:
    """The prefix of the component's reply subjects; its user may subscribe below it only."""
    return f"_INBOX_herald_{component.value}"


_WORK = subjects.WORK_STREAM
_EVENTS = subjects.EVENTS_STREAM
_MESSAGES = subjects.MESSAGES_STREAM
_CONTROL = f"KV_{subjects.CONTROL_BUCKET}"
_KEY = f"$KV.{subjects.CONTROL_BUCKET}."
_API = "$JS.API"
# The operator's bot records, bot.<namespace>.<name>, which the bot reads.
_BOT_RECORDS = "bot.>"


def _key(key: str) -> str:
    return f"{_KEY}{key}"


def _inbox(component: Component) -> Grant:
    return Grant(
        f"{inbox_prefix(component)}.>",
        "Replies to its own requests: JetStream answers, publish acks, KV reads, and the "
        "deliveries of its KV watches.",
    )


def _exists(*streams: str, owner: bool = False) -> tuple[Grant, ...]:
    why = (
        "See whether `{}` exists, to create it if not."
        if owner
        else ("See that `{}` exists; the operator creates it.")
    )
    return tuple(Grant(f"{_API}.STREAM.INFO.{stream}", why.format(stream)) for stream in streams)


def _watch_bucket(what: str, create: str) -> tuple[Grant, ...]:
    return (
        Grant(create, what),
        Grant(
            f"{_API}.CONSUMER.INFO.{_CONTROL}.*",
            "Read the state of its watch's consumer (how many records it starts with).",
        ),
        Grant(
            f"$JS.FC.{_CONTROL}.>",
            "Answer the flow control of its watch's consumer.",
        ),
    )


# Key patterns: each key function with a wildcard for its id.
_LEASES = subjects.bot_lease_key("*")
_HALTS = subjects.bot_halt_key("*")
_SPENDS = subjects.bot_spend_key("*")
_FAULTS = subjects.fault_key("*")
_BROADCASTS = subjects.control_key("*")
_TRAFFIC = subjects.bot_traffic_key("*")

OPERATOR = Permissions(
    publish=(
        Grant(
            subjects.work_subject("*"),
            "Queue a broadcast's work batches, one subject per Broadcast uid.",
        ),
        Grant(subjects.COMPLETIONS_SUBJECT, "Announce a finished broadcast to the bot."),
        *_exists(_WORK, _MESSAGES, _EVENTS, _CONTROL, owner=True),
        *(
            Grant(
                f"{_API}.STREAM.CREATE.{stream}",
                f"Create `{stream}`: the operator owns the streams.",
            )
            for stream in (_WORK, _MESSAGES, _EVENTS, _CONTROL)
        ),
        *(
            Grant(
                f"{_API}.STREAM.UPDATE.{stream}",
                f"Converge `{stream}` on HERALD_NATS_REPLICAS.",
            )
            for stream in (_WORK, _MESSAGES, _EVENTS)
        ),
        Grant(
            f"{_API}.CONSUMER.DURABLE.CREATE.{_MESSAGES}.*",
            "Create a verified bot's durable consumer of transactional messages "
            "`messages-<bot id>`.",
        ),
        Grant(
            f"{_API}.CONSUMER.CREATE.{_MESSAGES}.*.{subjects.message_subject('*')}",
            "The same by the newer request, which names the consumer and its filter subject.",
        ),
        Grant(
            f"{_API}.CONSUMER.INFO.{_MESSAGES}.*",
            "See whether a bot's consumer of transactional messages exists.",
        ),
        Grant(
            f"{_API}.STREAM.PURGE.{_WORK}",
            "Drop the queued work of a stopped or deleted broadcast.",
        ),
        Grant(
            f"{_API}.CONSUMER.DURABLE.CREATE.{_WORK}.*",
            "Create a broadcast's durable work consumer `work-<uid>` (nats-py's request for a "
            "durable consumer).",
        ),
        Grant(
            f"{_API}.CONSUMER.CREATE.{_WORK}.*.{subjects.work_subject('*')}",
            "The same by the newer request, which names the consumer and its filter subject.",
        ),
        Grant(
            f"{_API}.CONSUMER.INFO.{_WORK}.*",
            "Count a broadcast's queued and unacked work, to find work that was lost.",
        ),
        Grant(
            f"{_API}.CONSUMER.DELETE.{_WORK}.*",
            "Delete the work consumer of a stopped or deleted broadcast.",
        ),
        Grant(
            f"{_API}.STREAM.MSG.GET.{_CONTROL}",
            "Read control and fault records (nats-py's KV get on a bucket without direct gets).",
        ),
        Grant(
            f"{_API}.DIRECT.GET.{_CONTROL}.{_key('>')}",
            "The same on a bucket that allows direct gets.",
        ),
        *_watch_bucket(
            "List the bucket's keys, to find orphaned control records (an unnamed watch).",
            f"{_API}.CONSUMER.CREATE.{_CONTROL}",
        ),
        Grant(_key(_BROADCASTS), "Write and purge control records `broadcast.<uid>`."),
        Grant(_key(_FAULTS), "Purge a sender's fault record `fault.<uid>` once acted on."),
        Grant(_key(_BOT_RECORDS), "Write and purge bot records `bot.<namespace>.<name>`."),
        Grant(
            _key(_TRAFFIC),
            "Purge `traffic.<bot id>` of a bot whose last transactional message is long past.",
        ),
    ),
    subscribe=(_inbox(Component.OPERATOR),),
)

SENDER = Permissions(
    publish=(
        *_exists(_WORK, _MESSAGES, _CONTROL),
        Grant(
            f"{_API}.CONSUMER.INFO.{_MESSAGES}.*",
            "Bind to a bot's consumer of transactional messages `messages-<bot id>`.",
        ),
        Grant(f"{_API}.CONSUMER.MSG.NEXT.{_MESSAGES}.*", "Pull transactional messages."),
        Grant(f"$JS.ACK.{_MESSAGES}.>", "Ack, nak and terminate transactional messages."),
        Grant(
            subjects.outcome_subject("*"),
            "Announce that a transactional message reached its final state, to the API "
            "process that waits for it.",
        ),
        Grant(
            f"{_API}.CONSUMER.INFO.{_WORK}.*",
            "Bind to a broadcast's work consumer `work-<uid>` and read its ack wait.",
        ),
        Grant(f"{_API}.CONSUMER.MSG.NEXT.{_WORK}.*", "Pull work batches."),
        Grant(
            f"$JS.ACK.{_WORK}.>",
            "Ack, nak, terminate and extend (in progress) work batches.",
        ),
        *_watch_bucket(
            "Watch the whole control bucket: control records and bot halts (an unnamed watch).",
            f"{_API}.CONSUMER.CREATE.{_CONTROL}",
        ),
        Grant(
            f"{_API}.STREAM.MSG.GET.{_CONTROL}",
            "Read a bot's lease, halt and spend (nats-py's KV get on a bucket without direct "
            "gets).",
        ),
        *(
            Grant(
                f"{_API}.DIRECT.GET.{_CONTROL}.{_key(key)}",
                "The same on a bucket that allows direct gets.",
            )
            for key in (_LEASES, _HALTS, _SPENDS)
        ),
        Grant(
            _key(_LEASES),
            "Take, renew and release bot leases `lease.<bot id>` (compare-and-set writes).",
        ),
        Grant(_key(_HALTS), "Halt a bot for every replica after a 429: `halt.<bot id>`."),
        Grant(
            _key(_SPENDS),
            "Count a bot's paid messages of the day against its Stars budget, for the next "
            "lease holder: `spend.<bot id>`.",
        ),
        Grant(_key(_FAULTS), "Report that a broadcast cannot go on: `fault.<uid>`."),
    ),
    subscribe=(_inbox(Component.SENDER),),
)

BOT = Permissions(
    publish=(
        *_exists(_EVENTS),
        Grant(
            f"{_API}.CONSUMER.INFO.{_EVENTS}.*",
            "Find its durable consumer of completion records (HERALD_BOT_DURABLE).",
        ),
        Grant(
            f"{_API}.CONSUMER.CREATE.{_EVENTS}.*.{subjects.COMPLETIONS_SUBJECT}",
            "Create that consumer on first start, filtered on completion records only.",
        ),
        Grant(f"{_API}.CONSUMER.MSG.NEXT.{_EVENTS}.*", "Pull completion records."),
        Grant(f"$JS.ACK.{_EVENTS}.>", "Ack, nak and terminate completion records."),
        *_exists(_CONTROL),
        *_watch_bucket(
            "Watch the bot records `bot.<namespace>.<name>`, read-only and nothing else of the "
            "bucket: the watch's consumer must be created by name (the filter is then part of "
            "the request's subject), not by nats-py's unnamed `KeyValue.watch`.",
            f"{_API}.CONSUMER.CREATE.{_CONTROL}.*.{_key(_BOT_RECORDS)}",
        ),
    ),
    subscribe=(_inbox(Component.BOT),),
)

API = Permissions(
    publish=(
        *_exists(_MESSAGES, _CONTROL),
        Grant(
            subjects.message_subject("*"),
            "Queue a transactional message for the bot's sender, one subject per bot id.",
        ),
        Grant(
            _key(_TRAFFIC),
            "Say that the bot has transactional traffic, so a sender holds it: `traffic.<bot id>`.",
        ),
        *_watch_bucket(
            "Watch the bot records `bot.<namespace>.<name>`, read-only, as the bot does: which "
            "Bots exist, their ids and callback secrets.",
            f"{_API}.CONSUMER.CREATE.{_CONTROL}.*.{_key(_BOT_RECORDS)}",
        ),
    ),
    subscribe=(
        _inbox(Component.API),
        Grant(
            subjects.outcome_subject("*"),
            "Learn at once that a message reached its final state, for `?wait=` and callbacks.",
        ),
    ),
)

PERMISSIONS: Mapping[Component, Permissions] = {
    Component.OPERATOR: OPERATOR,
    Component.SENDER: SENDER,
    Component.BOT: BOT,
    Component.API: API,
}
