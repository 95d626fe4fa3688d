-- Work found lost (a purged stream, a batch terminated as undecodable) is queued again in a
-- new round; the round is part of each batch's message id, so JetStream's duplicate window
-- does not swallow the second queueing as a repeat of the first.
ALTER TABLE broadcasts ADD COLUMN publish_round integer NOT NULL DEFAULT 0;
