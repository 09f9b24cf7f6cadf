/**
 * Applies the numbered plain-SQL files in ./migrations in order, each once, each in its own
 * transaction. Safe to run at every start and from several replicas at once.
 */
import { readdir, readFile } from "node:fs/promises";
import type { Database } from "./database.js";

const MIGRATIONS_DIR = new URL("./migrations/", import.meta.url);

/** A migration file: `0001_init.sql` has version 1. */
interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** Brings the schema up to date (or up to version `upTo`, for tests of a migration); returns the versions it applied. */
export async function migrate(db: Database, upTo = Number.POSITIVE_INFINITY): Promise<number[]> {
  const applied: number[] = [];
  for (const migration of await readMigrations()) {
    if (migration.version > upTo) break;
    const ran = await db.transaction(async (tx) => {
      // Replicas starting together queue here; the loser then sees the version as applied.
      await tx.query("SELECT pg_advisory_xact_lock(7418820563)");
      // Created under the lock: concurrent CREATE TABLE IF NOT EXISTS on an empty database race
      // on the catalog, and all but one fail with a unique violation.
      await tx.query(
        `CREATE TABLE IF NOT EXISTS schema_migrations (
           version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
      );
      const done = await tx.query("SELECT 1 FROM schema_migrations WHERE version = $1", [migration.version]);
      if (done.length > 0) return false;
      await tx.exec(migration.sql);
      await tx.query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [migration.version, migration.name]);
      return true;
    });
    if (ran) applied.push(migration.version);
  }
  return applied;
}

async function readMigrations(): Promise<Migration[]> {
  const files = (await readdir(MIGRATIONS_DIR)).filter((file) => /^\d{4}_[a-z0-9_]+\.sql$/.test(file)).sort();
  return Promise.all(
    files.map(async (file) => ({
      version: Number(file.slice(0, 4)),
      name: file,
      sql: await readFile(new URL(file, MIGRATIONS_DIR), "utf8"),
    })),
  );
}
