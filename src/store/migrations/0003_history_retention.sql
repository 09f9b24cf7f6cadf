-- The oldest membership version that can still be rebuilt (diff, rollback): older change rows
-- and snapshots are pruned once they fall out of the history retention period.
ALTER TABLE segments ADD COLUMN history_from bigint NOT NULL DEFAULT 0;
