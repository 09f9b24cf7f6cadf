/**
 * SQL of import staging: unknown ids an import names, kept in the database (not in the process)
 * between the stream's messages, and resolved to uids inside the import's final transaction.
 */
import type { Database, Queryable } from "./database.js";

/** Rows per statement: small enough that other writes interleave on the embedded store. */
const STAGE_BATCH = 10_000;
/** Rows per statement when resolving: bounded so no statement nears the statement timeout. */
const RESOLVE_BATCH = 100_000;

/** What staged ids resolve to at commit. */
export interface StagedResolution {
  /** uids of the staged ids that name users (created now, or meanwhile by someone else). */
  uids: number[];
  /** Staged ids that name no user (only when users were not created). */
  unknown: number;
}

/** Staging of unknown import ids. */
export class ImportStagingStore {
  constructor(private readonly db: Database) {}

  /** Remembers `externalIds` for import `importId` (duplicates count once). */
  async stage(importId: string, externalIds: readonly string[]): Promise<void> {
    for (let from = 0; from < externalIds.length; from += STAGE_BATCH) {
      await this.db.query("INSERT INTO import_staging (import_id, external_id) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING", [
        importId,
        externalIds.slice(from, from + STAGE_BATCH),
      ]);
    }
  }

  /**
   * Inside the import's transaction: creates users for the staged ids when `createUsers`, returns
   * the uids they name, and deletes the staged rows.
   */
  async resolve(tx: Queryable, importId: string, createUsers: boolean): Promise<StagedResolution> {
    const uids: number[] = [];
    let unknown = 0;
    // Keyset pages over the staging primary key, so every statement touches a bounded slice.
    for (let after = ""; ; ) {
      if (createUsers) {
        await tx.query(
          `INSERT INTO users (external_id)
           SELECT external_id FROM import_staging WHERE import_id = $1 AND external_id > $2 ORDER BY external_id LIMIT $3
           ON CONFLICT (external_id) DO NOTHING`,
          [importId, after, RESOLVE_BATCH],
        );
      }
      const [page] = await tx.query<{ last: string | null; n: number; uids: number[] | null }>(
        `WITH page AS (
           SELECT s.external_id, u.uid FROM import_staging s LEFT JOIN users u USING (external_id)
           WHERE s.import_id = $1 AND s.external_id > $2 ORDER BY s.external_id LIMIT $3)
         SELECT max(external_id) AS last, count(*)::int AS n, array_agg(uid) FILTER (WHERE uid IS NOT NULL) AS uids FROM page`,
        [importId, after, RESOLVE_BATCH],
      );
      if (page === undefined || page.last === null) break;
      const found = page.uids ?? [];
      for (const uid of found) uids.push(uid);
      unknown += page.n - found.length;
      after = page.last;
      if (page.n < RESOLVE_BATCH) break;
    }
    await tx.query("DELETE FROM import_staging WHERE import_id = $1", [importId]);
    return { uids, unknown };
  }

  /** Forgets what a failed or cancelled import staged. */
  async discard(importId: string): Promise<void> {
    await this.db.query("DELETE FROM import_staging WHERE import_id = $1", [importId]);
  }

  /** Deletes rows older than `before`: left by a process that died mid-import. */
  async purge(before: Date): Promise<number> {
    const rows = await this.db.query<{ n: number }>(
      "WITH gone AS (DELETE FROM import_staging WHERE staged_at < $1 RETURNING 1) SELECT count(*)::int AS n FROM gone",
      [before],
    );
    return rows[0]?.n ?? 0;
  }
}
