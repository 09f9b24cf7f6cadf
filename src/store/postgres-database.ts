/** Database over node `pg` against a real Postgres (used when DATABASE_URL is set). */
import pg from "pg";
import type { Logger } from "pino";
import { checkpoint, throwIfOver } from "../control/cancellation.js";
import { UnavailableError } from "../errors.js";
import { copyOutRows, type OnRow } from "./copy-out.js";
import type { Database, Queryable } from "./database.js";
import { isRetryable, unavailable } from "./sql-errors.js";

// Counts and versions are int8 but stay far below 2^53: parse them as numbers, as PGlite does.
const types = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === pg.types.builtins.INT8 ? Number : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/** Time limits on the database, so a hung or overloaded server fails calls instead of holding them. */
export interface DatabaseTimeouts {
  /** Server-side statement_timeout; the client gives up on a silent server a little later. */
  statementMs: number;
  /** Server-side lock_timeout, and the longest wait for a pooled connection. */
  lockMs: number;
}

/** Extra time the client waits beyond statement_timeout before it deems the server hung. */
const HUNG_SERVER_GRACE_MS = 2_000;

/** The client's own timeout fired: the server did not answer at all (hung, stopped, partitioned). */
class SilentServerError extends Error {}

/** A pooled connection to Postgres. */
export class PostgresDatabase implements Database {
  readonly kind = "postgres";
  private readonly pool: pg.Pool;
  private readonly silentAfterMs: number;

  constructor(connectionString: string, log: Logger, timeouts: DatabaseTimeouts, max = 10) {
    this.silentAfterMs = timeouts.statementMs + HUNG_SERVER_GRACE_MS;
    this.pool = new pg.Pool({
      connectionString,
      max,
      types,
      connectionTimeoutMillis: timeouts.lockMs,
      statement_timeout: timeouts.statementMs,
      lock_timeout: timeouts.lockMs,
      // A transaction left open by a vanished process must not hold its locks for long.
      idle_in_transaction_session_timeout: timeouts.statementMs + HUNG_SERVER_GRACE_MS,
    });
    // An idle client losing its connection must not crash the process; the pool replaces it.
    this.pool.on("error", (error) => log.warn({ err: error }, "idle database connection failed"));
  }

  async query<R>(text: string, params?: readonly unknown[]): Promise<R[]> {
    const client = await this.connect();
    let broken: Error | undefined;
    try {
      return await this.run<R>(client, text, params);
    } catch (error: unknown) {
      if (error instanceof SilentServerError) broken = error;
      throw classify(error, this.silentAfterMs);
    } finally {
      client.release(broken);
    }
  }

  async exec(script: string): Promise<void> {
    await this.query(script);
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const client = await this.connect(signal);
    const tx: Queryable = {
      query: (text, params) => this.run(client, text, params),
      exec: async (script) => void (await this.run(client, script)),
    };
    // Set when the connection must be destroyed rather than reused.
    let broken: Error | undefined;
    let committing = false;
    try {
      throwIfOver(signal);
      await this.run(client, "BEGIN");
      const result = await fn(tx);
      // The last moment a cancellation or a passed deadline can still undo the change.
      await checkpoint(signal);
      committing = true;
      await this.run(client, "COMMIT");
      return result;
    } catch (error: unknown) {
      if (error instanceof SilentServerError) {
        // ROLLBACK would hang too: dropping the connection rolls back whatever did not commit.
        broken = error;
        if (committing) {
          throw new UnavailableError(
            `the database did not confirm the commit within ${this.silentAfterMs} ms; the change may or may not be applied (a retry is safe: member operations are idempotent)`,
            { cause: error },
          );
        }
      } else {
        broken = await this.run(client, "ROLLBACK").then(
          () => undefined,
          (rollbackError: unknown) => (rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError))),
        );
      }
      throw classify(error, this.silentAfterMs);
    } finally {
      client.release(broken);
    }
  }

  readonly copyOut = async (text: string, onRow: OnRow): Promise<void> => {
    const client = await this.connect();
    // A silent server fails the copy as it fails a statement: no row for silentAfterMs.
    const silence = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const quiet = () => {
      clearTimeout(timer);
      timer = setTimeout(() => silence.abort(new SilentServerError(`no COPY row within ${this.silentAfterMs} ms`)), this.silentAfterMs);
    };
    // A copy cut short leaves the connection mid-stream: it is dropped, never reused.
    let broken: Error | undefined;
    try {
      // A whole directory (100M users: over a minute) may outlast statement_timeout, which bounds
      // calls, not start-up; the silence timer above still catches a hung server.
      await this.run(client, "BEGIN READ ONLY");
      await this.run(client, "SET LOCAL statement_timeout = 0");
      quiet();
      await copyOutRows(client, text, silence.signal, async (bytes, start, end) => {
        quiet();
        await onRow(bytes, start, end);
        quiet();
      });
      await this.run(client, "COMMIT");
    } catch (error: unknown) {
      broken = error instanceof Error ? error : new Error(String(error));
      throw classify(error, this.silentAfterMs);
    } finally {
      clearTimeout(timer);
      client.release(broken);
    }
  };

  async close(): Promise<void> {
    await this.pool.end();
  }

  /** A pooled client; UNAVAILABLE when none frees up within the lock timeout. */
  private async connect(signal?: AbortSignal): Promise<pg.PoolClient> {
    const pending = this.pool.connect();
    if (signal === undefined) return pending.catch((error: unknown) => Promise.reject(unavailable(error)));
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      pending.then(
        (client) => {
          signal.removeEventListener("abort", onAbort);
          // Aborted while waiting: hand the connection straight back.
          if (signal.aborted) client.release();
          else resolve(client);
        },
        (error: unknown) => {
          signal.removeEventListener("abort", onAbort);
          reject(unavailable(error));
        },
      );
    });
  }

  /** Runs one statement, failing with SilentServerError when the server does not answer at all. */
  private async run<R>(client: pg.PoolClient, text: string, params?: readonly unknown[]): Promise<R[]> {
    let timer: NodeJS.Timeout | undefined;
    const silence = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new SilentServerError(`no answer within ${this.silentAfterMs} ms`)), this.silentAfterMs);
    });
    try {
      const result = await Promise.race([client.query(text, params as unknown[] | undefined), silence]);
      return result.rows as R[];
    } finally {
      clearTimeout(timer);
    }
  }
}

/** The domain error for a failed statement: UNAVAILABLE (retry later) or the error unchanged. */
function classify(error: unknown, silentAfterMs: number): unknown {
  if (error instanceof SilentServerError) {
    return new UnavailableError(
      `the database did not answer within ${silentAfterMs} ms; the connection was dropped, so an uncommitted change was rolled back (a retry is safe: member operations are idempotent)`,
      { cause: error },
    );
  }
  return isRetryable(error) ? unavailable(error) : error;
}
