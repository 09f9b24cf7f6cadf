-- Ids an import names that the directory does not know yet. They are staged here, in short
-- statements while the client streams, so an import holds no connection and no transaction
-- until its final commit (which turns them into users and deletes them). Rows of an import that
-- failed are deleted by it; rows of a process that died are purged by age (compaction).
-- UNLOGGED: after a crash these rows are worthless anyway, and skipping WAL makes staging cheap.
CREATE UNLOGGED TABLE import_staging (
  import_id    uuid NOT NULL,
  external_id  text COLLATE "C" NOT NULL,
  staged_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (import_id, external_id)
);
