-- The built-in analytics source: one row per behavioural event. Filters compile to SQL over this
-- table (src/query); SQL queries may read it too. Loaded by LoadEvents (events-store.ts).
-- COLLATE "C": user ids are opaque bytes, compared and sorted as such (as users.external_id).
CREATE TABLE events (
  user_id    text COLLATE "C" NOT NULL,
  name       text NOT NULL,
  ts         timestamptz NOT NULL,
  properties jsonb NOT NULL DEFAULT '{}'
);
-- "did E (≥ N times) in a window": a range scan on (name, ts) that never visits the heap for
-- user_id (index-only once the table is vacuumed).
CREATE INDEX events_name_ts ON events (name, ts) INCLUDE (user_id);
-- Per-user questions: first seen, last seen, "has not done E" anti-joins.
CREATE INDEX events_user_ts ON events (user_id, ts);
-- No GIN on properties: every filter shape names an event first, so (name, ts) narrows the rows
-- before properties are read; a GIN would slow loading for queries the planner rarely gives it.

-- Events of a LoadEvents stream on the embedded store, staged in short statements while the
-- client streams and moved into events by one final transaction, so a load is all-or-nothing
-- without holding PGlite's single connection for the whole stream. (On Postgres a load is one
-- COPY in one transaction and never touches this table.) Rows of a process that died are purged
-- by age at the next load. UNLOGGED: worthless after a crash anyway.
CREATE UNLOGGED TABLE events_staging (
  load_id    uuid NOT NULL,
  user_id    text COLLATE "C" NOT NULL,
  name       text NOT NULL,
  ts         timestamptz NOT NULL,
  properties jsonb NOT NULL,
  staged_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_staging_load ON events_staging (load_id);
