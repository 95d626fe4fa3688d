-- Reserved for the ledger's recall and correction columns, built on another branch: this
-- placeholder only keeps the versions without a gap until that migration takes its place.
SELECT 1;
