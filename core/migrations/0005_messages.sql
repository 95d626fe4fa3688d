-- Transactional messages: one message to one chat, taken by herald-api and sent by the
-- sender that holds the bot, ahead of the bot's broadcasts.
--
-- The idempotency key is unique per namespace and Bot: a retry of the same POST finds its
-- row (the fingerprint, a SHA-256 of the request's canonical body, tells a retry from another
-- message under the same key). The row's states are the ledger's (deliveries.state), with
-- the same meaning: claimed before the request leaves, uncertain when a sender died between
-- claim and answer, never sent again.
CREATE TABLE messages (
    id                  uuid PRIMARY KEY,
    namespace           text NOT NULL,
    bot                 text NOT NULL,
    bot_id              text NOT NULL CHECK (bot_id ~ '^[1-9][0-9]*$'),
    idempotency_key     text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    fingerprint         bytea NOT NULL,
    chat_id             bigint NOT NULL CHECK (chat_id <> 0),
    content             jsonb NOT NULL,
    deadline            timestamptz,
    callback_url        text,
    state               text NOT NULL DEFAULT 'pending'
                        CHECK (state IN ('pending', 'claimed', 'delivered', 'blocked',
                                         'failed', 'uncertain')),
    reason              text,
    telegram_message_id bigint,
    claimed_by          text,
    claimed_at          timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    sent_at             timestamptz,
    -- The outcome callback: pending until the receiver answered 2xx (done) or every attempt
    -- failed (failed); NULL without a callback_url.
    callback_state      text CHECK (callback_state IN ('pending', 'done', 'failed')),
    callback_attempts   integer NOT NULL DEFAULT 0,
    callback_next_at    timestamptz,
    UNIQUE (namespace, bot, idempotency_key)
);

-- The bot's transactional queue depth (the 429 bound) and the sweep of stale claims.
CREATE INDEX messages_open ON messages (bot_id, state) WHERE state IN ('pending', 'claimed');
-- Callbacks due.
CREATE INDEX messages_callbacks_due ON messages (callback_next_at)
    WHERE callback_state = 'pending';
-- Expiry of kept idempotency keys, oldest first.
CREATE INDEX messages_created ON messages (created_at);
