-- What the operator has done for each broadcast, so a restart resumes instead of redoing:
-- the audience is materialised once, and work is published from a cursor.
CREATE TABLE broadcasts (
    uid               uuid        PRIMARY KEY,
    namespace         text        NOT NULL,
    name              text        NOT NULL,
    bot_id            text        NOT NULL,
    total             integer,                 -- set when the audience is materialised
    materialised_at   timestamptz,
    published_through bigint,                  -- highest chat_id published to JetStream
    published_at      timestamptz,             -- every ledger row has been published
    started_at        timestamptz,
    completed_at      timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now()
);

-- Senders reclaim rows of a dead replica by claim age.
CREATE INDEX deliveries_claimed ON deliveries (broadcast_uid, claimed_at) WHERE state = 'claimed';
