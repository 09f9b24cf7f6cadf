-- Audit trail of every segment's definition and status: who changed what, when, from → to.
-- Written in the same transaction as the change it describes.
CREATE TABLE segment_history (
  seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  segment_id      uuid NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
  at              timestamptz NOT NULL,
  action          text NOT NULL CHECK (action IN ('CREATE', 'UPDATE', 'ACTIVATE', 'PAUSE', 'RESUME', 'ARCHIVE', 'RESTORE')),
  caller          text NOT NULL DEFAULT '',
  from_status     text,
  to_status       text NOT NULL,
  changed_fields  text[] NOT NULL DEFAULT '{}'
);

CREATE INDEX segment_history_by_segment ON segment_history (segment_id, seq);
