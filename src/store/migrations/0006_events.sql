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
