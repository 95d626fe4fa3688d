-- Retention (HERALD_LEDGER_RETENTION_DAYS) removes a finished broadcast's ledger rows and
-- clicks in batches, and keeps its bookkeeping row, which names no chat: the operator still
-- knows the audience was materialised (so a later spec change never writes it again) and
-- reads the counts it had from ledger_counts instead of from rows that are gone.
--
-- ledger_counts: {"states": {state: n}, "clicks": {callback: n}}, written before the first
-- batch is deleted, so the counts never shrink while batches go; ledger_removed_at: the last
-- batch went. Nullable columns without a default: adding them rewrites nothing and takes the
-- table's lock only for the catalogue change.
--
-- No index is added: each batch deletes by the primary keys of deliveries and clicks, which
-- lead with broadcast_uid, and transactional messages go by messages_created (0005). (Nor
-- could one be built without blocking writes here: each migration runs in one transaction,
-- where CREATE INDEX CONCURRENTLY is refused.)
ALTER TABLE broadcasts
    ADD COLUMN ledger_counts jsonb,
    ADD COLUMN ledger_removed_at timestamptz;
