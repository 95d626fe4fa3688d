-- Subscribers of the bot: who may receive broadcasts. Rows are never deleted by Herald;
-- a user who blocks the bot or leaves becomes inactive so no broadcast reaches them again.
CREATE TABLE subscribers (
    chat_id       bigint      PRIMARY KEY,
    username      text,
    first_name    text,
    last_name     text,
    language_code text,
    tags          text[]      NOT NULL DEFAULT '{}',
    is_active     boolean     NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Audience selection filters active subscribers by language and tags.
CREATE INDEX subscribers_active_language ON subscribers (language_code) WHERE is_active;
CREATE INDEX subscribers_active_tags ON subscribers USING gin (tags) WHERE is_active;

-- The delivery ledger: one row per (broadcast, recipient), the single source of truth for
-- what was sent. Kept after a Broadcast is deleted, for audit.
CREATE TABLE deliveries (
    broadcast_uid uuid        NOT NULL,
    chat_id       bigint      NOT NULL,
    state         text        NOT NULL DEFAULT 'pending'
        CONSTRAINT deliveries_state_known
        CHECK (state IN ('pending', 'claimed', 'delivered', 'blocked', 'failed', 'uncertain')),
    reason        text,
    message_id    bigint,
    attempts      integer     NOT NULL DEFAULT 0,
    claimed_by    text,
    claimed_at    timestamptz,
    finished_at   timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (broadcast_uid, chat_id)
);

-- Status refresh counts rows per state of one broadcast.
CREATE INDEX deliveries_broadcast_state ON deliveries (broadcast_uid, state);
