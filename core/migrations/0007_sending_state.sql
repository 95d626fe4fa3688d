-- A claimed row becomes 'sending' in the commit just before its request leaves, so after a
-- crash a claim that never reached the wire is sent again, and only a row that may have
-- reached Telegram can end uncertain.
--
-- NOT VALID, then VALIDATE: the new check is enforced for every write at once, and checking
-- the existing rows takes no lock that blocks the senders on a large ledger.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_state_known;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_state_known
    CHECK (state IN ('pending', 'claimed', 'sending', 'delivered', 'blocked', 'failed',
                     'uncertain'))
    NOT VALID;
ALTER TABLE deliveries VALIDATE CONSTRAINT deliveries_state_known;

-- Senders reclaim rows of a dead replica by claim age, in either open state.
DROP INDEX deliveries_claimed;
CREATE INDEX deliveries_claimed ON deliveries (broadcast_uid, claimed_at)
    WHERE state IN ('claimed', 'sending');
