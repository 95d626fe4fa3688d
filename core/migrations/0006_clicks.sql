-- Presses of a broadcast's callback buttons: one row per (broadcast, chat, button), so a
-- repeated press is the same row and status.clicks counts distinct chats. Kept like the
-- ledger when the Broadcast is deleted, for audit.
CREATE TABLE clicks (
    broadcast_uid uuid        NOT NULL,
    chat_id       bigint      NOT NULL CHECK (chat_id <> 0),
    callback      text        NOT NULL CHECK (callback ~ '^[A-Za-z0-9_-]{1,32}$'),
    pressed_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (broadcast_uid, callback, chat_id)
);
