-- Recall and correction of what a broadcast delivered (spec.recall, spec.correction): every
-- row says what its chat sees now.
--
-- message_ids: every message the send made (an album is one message per item; message_id
-- keeps the first, as before). Recall deletes them all.
-- recall_outcome / recalled_at: what became of the row's deleteMessage (recalled, tooOld,
-- failed), NULL while it is still to do.
-- correction_key / correction_outcome / corrected_at: the correction (a digest of it) the
-- row's message was last edited to or sent with, and how that ended (corrected, gone,
-- failed); a row whose key is not the current correction's is still to edit.
-- amend_by / amend_at: a sender's claim on the row's deletion or edit, taken in the commit
-- before its request leaves (claim-before-act, as for sends), so a crash never makes two
-- senders act at once and a claim older than the claim TTL is a dead sender's.
ALTER TABLE deliveries
    ADD COLUMN message_ids bigint[],
    ADD COLUMN recall_outcome text,
    ADD COLUMN recalled_at timestamptz,
    ADD COLUMN correction_key text,
    ADD COLUMN correction_outcome text,
    ADD COLUMN corrected_at timestamptz,
    ADD COLUMN amend_by text,
    ADD COLUMN amend_at timestamptz;

-- Senders find the delivered rows still to recall or edit without reading the rest.
CREATE INDEX deliveries_to_amend ON deliveries (broadcast_uid, chat_id)
    WHERE state = 'delivered' AND recall_outcome IS NULL;
