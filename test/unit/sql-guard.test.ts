import { describe, expect, it } from "vitest";
import { InvalidArgumentError } from "../../src/errors.js";
import { checkSelectSql } from "../../src/query/sql-guard.js";

/** The message checking `sql` fails with, or undefined when it passes. */
async function verdict(sql: string): Promise<string | undefined> {
  try {
    await checkSelectSql(sql, "query.sql");
    return undefined;
  } catch (error: unknown) {
    if (!(error instanceof InvalidArgumentError)) throw error;
    expect(error.field).toBe("query.sql");
    return error.message;
  }
}

describe("checkSelectSql", () => {
  const refused: [string, string][] = [
    ["DELETE FROM events", "query.sql: DELETE is not allowed (only one SELECT)"],
    ["SELECT 1; DROP TABLE events", "holds 2 statements (SELECT; DROP); only one SELECT is allowed"],
    ["COMMIT; DROP TABLE events", "holds 2 statements (COMMIT; DROP)"],
    ["SELECT user_id FROM events; SELECT user_id FROM events", "holds 2 statements (SELECT; SELECT)"],
    ["WITH d AS (DELETE FROM events RETURNING user_id) SELECT user_id FROM d", "DELETE is not allowed, not even inside a WITH"],
    ["WITH d AS (INSERT INTO t VALUES ('x') RETURNING user_id) SELECT user_id FROM d", "INSERT is not allowed"],
    ["WITH d AS (UPDATE t SET a = 1 RETURNING user_id) SELECT user_id FROM d", "UPDATE is not allowed"],
    ["SELECT user_id FROM events FOR UPDATE", "locking clauses (FOR UPDATE / FOR SHARE …) are not allowed"],
    ["SELECT user_id FROM (SELECT user_id FROM events FOR SHARE) q", "locking clauses"],
    ["SELECT user_id FROM events FOR NO KEY UPDATE SKIP LOCKED", "locking clauses"],
    ["SELECT user_id INTO t FROM events", "SELECT INTO is not allowed"],
    ["COPY events TO STDOUT", "COPY is not allowed (only one SELECT)"],
    ["SET ROLE postgres", "SET ROLE is not allowed (only one SELECT)"],
    ["SET statement_timeout = 0", "SET STATEMENT_TIMEOUT is not allowed"],
    ["RESET ALL", "RESET is not allowed"],
    ["BEGIN", "BEGIN is not allowed"],
    ["COMMIT", "COMMIT is not allowed"],
    ["ROLLBACK", "ROLLBACK is not allowed"],
    ["INSERT INTO events (user_id, name, ts) VALUES ('u', 'e', now())", "INSERT is not allowed"],
    ["UPDATE events SET name = 'x'", "UPDATE is not allowed"],
    ["MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN DELETE", "MERGE is not allowed"],
    ["DROP TABLE events", "DROP is not allowed"],
    ["CREATE TABLE t (a int)", "CREATE is not allowed"],
    ["ALTER TABLE events ADD COLUMN x int", "ALTER TABLE is not allowed"],
    ["TRUNCATE events", "TRUNCATE is not allowed"],
    ["CREATE TABLE t AS SELECT user_id FROM events", "CREATE TABLE AS is not allowed"],
    ["CALL p()", "CALL is not allowed"],
    ["DO $$ BEGIN END $$", "DO is not allowed"],
    ["EXPLAIN SELECT user_id FROM events", "EXPLAIN is not allowed"],
    ["LOCK TABLE events", "LOCK is not allowed"],
    ["PREPARE p AS SELECT user_id FROM events", "PREPARE is not allowed"],
    ["EXECUTE p", "EXECUTE is not allowed"],
    ["VACUUM events", "VACUUM is not allowed"],
    ["GRANT SELECT ON events TO public", "GRANT is not allowed"],
    ["LISTEN x", "LISTEN is not allowed"],
    ["DECLARE c CURSOR FOR SELECT user_id FROM events", "DECLARE CURSOR is not allowed"],
    ["SELECT set_config('role','postgres',true) AS user_id", "calling set_config() is not allowed"],
    ["SELECT pg_catalog.set_config('role','postgres',true) AS user_id", "calling pg_catalog.set_config() is not allowed"],
    ["SELECT SET_CONFIG('role','postgres',true) AS user_id", "calling set_config() is not allowed"],
    ["SELECT user_id FROM events WHERE pg_terminate_backend(1)", "calling pg_terminate_backend()"],
    ["SELECT pg_cancel_backend(1)::text AS user_id", "calling pg_cancel_backend()"],
    ["SELECT pg_reload_conf()::text AS user_id", "calling pg_reload_conf()"],
    ["SELECT pg_rotate_logfile()::text AS user_id", "calling pg_rotate_logfile()"],
    ["SELECT pg_read_file('/etc/passwd') AS user_id", "calling pg_read_file()"],
    ["SELECT pg_read_binary_file('/etc/passwd')::text AS user_id", "calling pg_read_binary_file()"],
    ["SELECT f AS user_id FROM pg_ls_dir('.') f", "calling pg_ls_dir()"],
    ["SELECT pg_stat_file('x')::text AS user_id", "calling pg_stat_file()"],
    ["SELECT lo_import('/etc/passwd')::text AS user_id", "calling lo_import()"],
    ["SELECT lo_export(1, '/tmp/x')::text AS user_id", "calling lo_export()"],
    ["SELECT lo_unlink(1)::text AS user_id", "calling lo_unlink()"],
    ["SELECT user_id FROM dblink('host=x', 'SELECT 1') AS t(user_id text)", "calling dblink()"],
    ["SELECT dblink_exec('DROP TABLE events') AS user_id", "calling dblink_exec()"],
    ["SELECT user_id FROM events WHERE pg_advisory_lock(1) IS NULL", "calling pg_advisory_lock()"],
    ["SELECT pg_try_advisory_lock(1)::text AS user_id", "calling pg_try_advisory_lock()"],
    ["SELECT pg_notify('c', 'x')::text AS user_id", "calling pg_notify()"],
    ["SELECT txid_current()::text AS user_id", "calling txid_current()"],
    ["SELECT pg_current_xact_id()::text AS user_id", "calling pg_current_xact_id()"],
    ["SELECT nextval('s')::text AS user_id", "calling nextval()"],
    ["SELECT setval('s', 1)::text AS user_id", "calling setval()"],
    ["SELECT query_to_xml('DELETE FROM events', true, true, '')::text AS user_id", "calling query_to_xml()"],
    ["SELECT user_id FROM events e WHERE EXISTS (SELECT 1 FROM lo_import('/x') x)", "calling lo_import()"],
    ["SELECT * FROM events", "SELECT * is not allowed: name the user_id column explicitly"],
    ["SELECT e.* FROM events e", "SELECT * is not allowed"],
    ["TABLE events", "SELECT * is not allowed"],
    ["SELECT name FROM events", "must return a column named user_id"],
    ["SELECT 1", "must return a column named user_id"],
    ["SELECT name FROM events UNION SELECT user_id FROM events", "must return a column named user_id"],
    ["SELECT user_id, user_id FROM events", "returns 2 columns named user_id"],
    ['SELECT user_id AS "User_Id" FROM events', "must return a column named user_id"],
    ["VALUES ('a')", "a bare VALUES has no user_id column"],
    ["SELECT user_id FROM events WHERE", "does not parse: syntax error at end of input (at character 33)"],
    ["SELEC user_id FROM events", 'does not parse: syntax error at or near "SELEC" (at character 1)'],
    ["SELECT 'é' AS user_id FROM x WHERE )", 'does not parse: syntax error at or near ")" (at character 36)'],
    ["   ", "must be one SELECT statement; it is empty"],
    // The parser bounds nesting itself: a refusal, not a crashed process.
    [`SELECT ${"(".repeat(10_000)}user_id${")".repeat(10_000)} AS user_id FROM events`, "does not parse: memory exhausted"],
    ["SELECT data AS user_id FROM pg_logical_slot_get_changes('s', NULL, NULL)", "calling pg_logical_slot_get_changes()"],
    ["SELECT pg_file_write('f', 'x', false)::text AS user_id", "calling pg_file_write()"],
    ["SELECT pg_stat_reset()::text AS user_id", "calling pg_stat_reset()"],
    [";", "must be one SELECT statement; it holds none"],
  ];
  it.each(refused)("refuses %s", async (sql, message) => {
    expect(await verdict(sql)).toContain(message);
  });

  const accepted = [
    "SELECT user_id FROM events",
    "SELECT user_id FROM events;",
    "SELECT DISTINCT e.user_id FROM events e WHERE e.name = 'purchase' AND e.ts > now() - interval '30 days'",
    "SELECT id AS user_id FROM users",
    "SELECT ID AS USER_ID FROM users",
    "SELECT e.user_id::text FROM events e",
    "SELECT e.user_id FROM events e JOIN users u ON u.id = e.user_id LEFT JOIN orders o ON o.user_id = e.user_id",
    "WITH buyers AS (SELECT user_id FROM events WHERE name = 'purchase') SELECT user_id FROM buyers",
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3) SELECT i::text AS user_id FROM n",
    "SELECT user_id FROM (SELECT user_id, row_number() OVER (PARTITION BY user_id ORDER BY ts DESC) AS rn FROM events) q WHERE rn = 1",
    "SELECT user_id FROM events WHERE name = 'signup' UNION SELECT user_id FROM events WHERE name = 'purchase'",
    "SELECT user_id FROM events INTERSECT SELECT user_id FROM events WHERE name = 'x' EXCEPT SELECT 'u1'",
    "(SELECT user_id FROM events) UNION ALL (SELECT user_id FROM events)",
    "SELECT user_id FROM events WHERE user_id IN (SELECT user_id FROM events WHERE name = 'signup')",
    "SELECT user_id FROM events GROUP BY user_id HAVING count(*) >= 3",
    "SELECT v.user_id FROM (VALUES ('a'), ('b')) AS v(user_id)",
    "SELECT column1 AS user_id FROM (VALUES ('a')) v",
    "SELECT pg_sleep(5)::text AS user_id",
    "SELECT user_id FROM events WHERE current_setting('timezone') = 'UTC' AND properties ->> 'plan' = 'pro'",
    "SELECT user_id, count(*) AS n FROM events GROUP BY 1",
    // Names that merely look like denied functions in strings and identifiers are fine.
    "SELECT user_id FROM events WHERE name = 'set_config' AND properties ? 'DeleteStmt'",
  ];
  it.each(accepted)("accepts %s", async (sql) => {
    expect(await verdict(sql)).toBeUndefined();
  });
});
