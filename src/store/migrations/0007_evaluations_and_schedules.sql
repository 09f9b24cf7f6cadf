-- Evaluation history (ListEvaluations) and the state the scheduler coordinates replicas through.

-- One row per evaluation run of a DYNAMIC segment, and per scheduled run that was skipped (the
-- segment was PAUSED, or its previous run was still going). Newest first = highest seq first.
CREATE TABLE evaluations (
  seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  segment_id   uuid NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
  trigger      text NOT NULL CHECK (trigger IN ('MANUAL', 'SCHEDULE')),
  status       text NOT NULL CHECK (status IN ('SUCCEEDED', 'FAILED', 'SKIPPED')),
  started_at   timestamptz NOT NULL,
  duration_ms  bigint NOT NULL DEFAULT 0,
  added        bigint NOT NULL DEFAULT 0,
  removed      bigint NOT NULL DEFAULT 0,
  total        bigint NOT NULL DEFAULT 0,
  version      bigint NOT NULL DEFAULT 0,
  -- Why the run failed or was skipped; NULL on success.
  error        text
);

CREATE INDEX evaluations_by_segment ON evaluations (segment_id, seq);

-- Schedule state, one set per segment, shared by every replica. A due run is claimed by moving
-- next_run_at forward under a row lock (SELECT … FOR UPDATE): exactly one replica sees it due.
--   next_run_at             when the next scheduled run is due (NULL: not armed)
--   schedule_armed          the "cron␟time zone" next_run_at was computed from; a different
--                           schedule re-arms it
--   schedule_running_since  set while a claimed run is going (a lease: older than the scheduler's
--                           lease is treated as a dead replica's), so no replica starts a second
--   schedule_failures       consecutive failed scheduled runs (drives the backoff); 0 after success
--   schedule_error          the last failed scheduled run's error
--   last_success_at         start of the latest successful evaluation, any trigger (staleness)
ALTER TABLE segments
  ADD COLUMN next_run_at timestamptz,
  ADD COLUMN schedule_armed text,
  ADD COLUMN schedule_running_since timestamptz,
  ADD COLUMN schedule_failures integer NOT NULL DEFAULT 0,
  ADD COLUMN schedule_error text,
  ADD COLUMN last_success_at timestamptz;

CREATE INDEX segments_next_run ON segments (next_run_at) WHERE next_run_at IS NOT NULL;
