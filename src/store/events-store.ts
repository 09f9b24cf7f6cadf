/**
 * SQL of the built-in analytics source's events table: appending a load's rows. Postgres: one
 * COPY FROM STDIN in one transaction, on a connection of its own (a COPY lasts as long as the
 * client streams, so it must not be cut by DB_STATEMENT_TIMEOUT_MS). PGlite: batches staged in
 * short statements, then moved into events in one transaction. Either way all or nothing.
 */
import { randomUUID } from "node:crypto";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import type { Database } from "./database.js";
import { unavailable } from "./sql-errors.js";

/** One valid event, normalized: `ts` as ISO-8601 with an offset, `properties` as JSON object text. */
export interface EventRow {
  userId: string;
  name: string;
  ts: string;
  properties: string;
}

/** Staged rows older than this belong to a process that died mid-load. */
const STALE_STAGING_MS = 86_400_000;

/** Appends events. */
export class EventsStore {
  constructor(
    private readonly db: Database,
    /** The service's DATABASE_URL when the store is Postgres: COPY runs on its own connection. */
    private readonly databaseUrl: string | undefined,
  ) {}

  /**
   * Appends every row of `batches` in one transaction and returns how many; when a batch throws
   * or `signal` aborts first, nothing is appended and the error (or the signal's reason) is thrown.
   */
  append(batches: AsyncIterable<readonly EventRow[]>, signal?: AbortSignal): Promise<number> {
    return this.databaseUrl === undefined ? this.appendStaged(batches, signal) : this.appendByCopy(this.databaseUrl, batches, signal);
  }

  private async appendByCopy(url: string, batches: AsyncIterable<readonly EventRow[]>, signal?: AbortSignal): Promise<number> {
    const client = new pg.Client({ connectionString: url });
    // A dropped connection during a load surfaces through the COPY; do not crash on the event.
    client.on("error", () => undefined);
    await client.connect().catch((error: unknown) => Promise.reject(unavailable(error)));
    let rows = 0;
    try {
      await client.query("BEGIN");
      const copy = client.query(copyFrom("COPY events (user_id, name, ts, properties) FROM STDIN"));
      const text = async function* () {
        for await (const batch of batches) {
          rows += batch.length;
          yield batch.map(copyLine).join("");
        }
      };
      await pipeline(Readable.from(text(), { objectMode: false }), copy, signal === undefined ? {} : { signal });
      signal?.throwIfAborted();
      await client.query("COMMIT");
      return rows;
    } catch (error: unknown) {
      // Ending the connection rolls back, also mid-COPY.
      throw signal?.aborted === true ? signal.reason : error;
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  private async appendStaged(batches: AsyncIterable<readonly EventRow[]>, signal?: AbortSignal): Promise<number> {
    const loadId = randomUUID();
    await this.db.query("DELETE FROM events_staging WHERE staged_at < $1", [new Date(Date.now() - STALE_STAGING_MS)]);
    try {
      for await (const batch of batches) {
        signal?.throwIfAborted();
        if (batch.length === 0) continue;
        await this.db.query(
          `INSERT INTO events_staging (load_id, user_id, name, ts, properties)
           SELECT $1, user_id, name, ts, properties FROM json_populate_recordset(NULL::events, $2::json)`,
          [loadId, `[${batch.map(jsonRow).join(",")}]`],
        );
      }
      return await this.db.transaction(async (tx) => {
        const [moved] = await tx.query<{ n: number }>(
          `WITH moved AS (
             INSERT INTO events (user_id, name, ts, properties)
             SELECT user_id, name, ts, properties FROM events_staging WHERE load_id = $1 RETURNING 1)
           SELECT count(*)::int AS n FROM moved`,
          [loadId],
        );
        await tx.query("DELETE FROM events_staging WHERE load_id = $1", [loadId]);
        return moved?.n ?? 0;
      }, signal);
    } catch (error: unknown) {
      await this.db.query("DELETE FROM events_staging WHERE load_id = $1", [loadId]).catch(() => undefined);
      throw error;
    }
  }
}

/** One row in COPY's text format. */
function copyLine(row: EventRow): string {
  return `${copyField(row.userId)}\t${copyField(row.name)}\t${row.ts}\t${copyField(row.properties)}\n`;
}

function copyField(value: string): string {
  return /[\\\t\n\r]/.test(value) ? value.replace(/[\\\t\n\r]/g, (c) => COPY_ESCAPES[c] ?? c) : value;
}

const COPY_ESCAPES: Record<string, string> = { "\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r" };

/** One row as a JSON object for json_populate_recordset (properties embedded as JSON, not text). */
function jsonRow(row: EventRow): string {
  return `{"user_id":${JSON.stringify(row.userId)},"name":${JSON.stringify(row.name)},"ts":"${row.ts}","properties":${row.properties}}`;
}
