"""Senders: pull a broadcast's work from JetStream and deliver it through aiogram.

How replicas share the work (the algorithm the rate guarantees rest on)
-----------------------------------------------------------------------
*Bot leases.* A sender sends for a bot only while it holds the bot's lease, a record at
``lease.<bot_id>`` in the control bucket. It takes the lease with compare-and-set (create the
key, or update it at the revision it read when the stored lease has expired), renews it every
``lease_seconds / 5`` and deletes it on shutdown. A killed holder's lease expires after
``lease_seconds`` and another replica takes the bot over. So exactly one process paces each
bot, and it enforces every limit locally, without coordinating per message: each broadcast's
``messagesPerSecond``, the bot's 30 msg/s (1000 with paid broadcasts) shared max-min fairly
between its concurrent broadcasts, and one message per second per chat
(:mod:`herald.sender.pacing`). Scaling out therefore helps across bots, not within one: a
bot's ceiling is Telegram's, and one process reaches it with requests in flight.

*Halts.* A 429 halts the whole bot for ``retry_after``: the holder stops starting sends and
writes ``halt.<bot_id>`` with the instant it ends, which a new holder reads before sending.

*Work.* The lease holder pulls from each active broadcast's durable consumer
(``work-<uid>``), claims ledger rows in small groups right before sending them, sends with up
to ``max_in_flight`` requests open, writes each outcome, and acks a work message when every
row of it is terminal. A row claimed by another sender is left to it, and its message is
nak'ed with a delay; once the claim is older than ``claim_ttl_seconds`` its sender is gone and
the row becomes ``uncertain`` (atMostOnce) or is claimed again (atLeastOnce). Messages of a
killed sender come back when their ack wait runs out.

*Transactional messages.* A bot is also held while it has a Bot record (``bot.<ns>.<name>``)
whose token opens and herald-api took a message for it within
``transactional_window_seconds`` (``traffic.<bot id>``). The holder pulls the bot's durable
consumer ``messages-<bot id>``, claims a few messages in the ``messages`` table shortly before
their slot (only pending rows), and the pacer serves them ahead of the bot's broadcasts under
the same bot limit and chat second. Each outcome is recorded, announced on
``herald.outcomes.<bot id>`` and acked (:mod:`herald.sender.messaging`).

*Control.* Control records (``broadcast.<uid>``) arrive through a watch: paused stops new
claims and sends at once and gives claimed rows back; stopped or deleted drops the local work.
Faults the sender finds (content rejected, Stars budget spent) go to ``fault.<uid>`` for the
operator.

Entry point: ``herald-sender`` (:mod:`herald.sender.__main__`), configured by
:class:`herald.sender.settings.SenderSettings`.
"""

from herald.telegram import imports as _imports

# Before any module of the sender imports aiogram: its start from zero replicas is on the path
# of a Broadcast's first message.
_imports.defer_model_builds()
