/**
 * The analytics runner: streams the `user_id` column of an already-vetted SELECT (src/query
 * checks its shape) in chunks, never as one big array. Postgres: `COPY (…) TO STDOUT` on a pool
 * of its own (the fastest path, DESIGN.md "Analytics queries"); PGlite: `COPY (…) TO
 * '/dev/blob'` in its worker, split here — the small-scale default. Either way the query runs in
 * a READ ONLY transaction, as ANALYTICS_ROLE when set, with its parameters passed as settings.
 */
import pg from "pg";
import type { Logger } from "pino";
import { nextSlice, sliceDue } from "../control/time-slice.js";
import { DeadlineExceededError, DomainError, InvalidArgumentError, ResourceExhaustedError } from "../errors.js";
import { toSettingReferences } from "./analytics-params.js";
import { copyOutRows } from "./copy-out.js";
import type { Database } from "./database.js";
import { PgliteDatabase, type Statement } from "./pglite-database.js";
import { isRetryable, sqlState, unavailable } from "./sql-errors.js";
import { type UserIdChunk, UserIdChunkBuilder } from "./user-id-chunk.js";

/** An already-vetted SELECT returning a `user_id` column, with `$n` bound parameters. */
export interface UserIdQuery {
  text: string;
  params: readonly unknown[];
}

/** Limits of one run. */
export interface RunLimits {
  /** Longest the query may run (statement_timeout on Postgres; abandoned after it on PGlite). */
  timeoutMs: number;
  /** Most rows (user ids, duplicates included) the query may return; more → RESOURCE_EXHAUSTED. */
  rowCap: number;
  /** Aborting stops the run; it rejects with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * Receives one chunk of ids; the next chunk waits until a returned promise settles, and reuses
 * this chunk's buffers then: copy out whatever must be kept.
 */
export type OnIds = (ids: UserIdChunk) => void | Promise<void>;

/** Where analytics queries run. */
export interface AnalyticsSource {
  /** Streams the query's non-null `user_id`s to `onIds` in chunks; resolves to the number of rows. */
  runUserIdQuery(query: UserIdQuery, limits: RunLimits, onIds: OnIds): Promise<{ rows: number }>;
  /**
   * Plans a vetted query without running it (EXPLAIN), as the source's role: a missing table or
   * column, a type error or a denied table surfaces when the query is saved, not at its first run.
   */
  explain(sql: string, timeoutMs: number): Promise<void>;
  /** Releases the source's connections (not the service database's). */
  close(): Promise<void>;
}

/** What choosing a source needs. */
export interface AnalyticsSourceDeps {
  /** The service's database: the source when no ANALYTICS_DATABASE_URL is set. */
  db: Database;
  /** The service's DATABASE_URL (Postgres store), for the source's own pool. */
  databaseUrl: string | undefined;
  analyticsDatabaseUrl: string | undefined;
  analyticsRole: string | undefined;
  log: Logger;
}

/** Ids per chunk handed to `onIds`. */
export const CHUNK_IDS = 10_000;
/** Connections in the analytics pool: evaluations are few and each holds one for its run. */
const POOL_SIZE = 4;
/** How long past the timeout the client waits for the server's own statement_timeout to fire. */
const SERVER_GRACE_MS = 2_000;
const MAX_ID_BYTES = 256;

/** The configured source: ANALYTICS_DATABASE_URL, else the service's Postgres, else its PGlite. */
export function openAnalyticsSource(deps: AnalyticsSourceDeps): AnalyticsSource {
  const url = deps.analyticsDatabaseUrl ?? deps.databaseUrl;
  if (url !== undefined) return new PostgresAnalyticsSource(url, deps.analyticsRole, deps.log);
  if (deps.db instanceof PgliteDatabase) return new PgliteAnalyticsSource(deps.db, deps.analyticsRole);
  throw new Error("a Postgres store needs its DATABASE_URL for the analytics source");
}

/** The statements that start a run: settings for the parameters, and the role. */
function preamble(query: UserIdQuery, role: string | undefined): { setup: Statement[]; select: string } {
  const { text, setup } = toSettingReferences(query.text, query.params);
  const roleSetup = role === undefined ? [] : [{ text: `SET LOCAL ROLE ${quoteIdentifier(role)}` }];
  return { setup: [...roleSetup, ...setup], select: `SELECT user_id FROM (${text}) q WHERE user_id IS NOT NULL` };
}

/** `name` as a quoted SQL identifier. */
export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** The run's abort signal: the caller's, plus the timeout (after `graceMs`) as a DeadlineExceededError. */
function runSignal(limits: RunLimits, graceMs: number): { signal: AbortSignal; dispose: () => void } {
  const timer = new AbortController();
  const handle = setTimeout(
    () => timer.abort(new DeadlineExceededError("timeout", `the analytics query ran longer than its ${limits.timeoutMs} ms timeout`)),
    limits.timeoutMs + graceMs,
  );
  const signal = limits.signal === undefined ? timer.signal : AbortSignal.any([limits.signal, timer.signal]);
  return { signal, dispose: () => clearTimeout(handle) };
}

/** Lines between two looks at the clock while splitting a result. */
const LINES_PER_CHECK = 256;
const LF = 0x0a;
const BACKSLASH = 0x5c;

/** Collects ids into chunks, checks each, and enforces the row cap. */
class IdChunker {
  rows = 0;
  private readonly chunk = new UserIdChunkBuilder(CHUNK_IDS);

  constructor(
    private readonly rowCap: number,
    private readonly onIds: OnIds,
  ) {}

  /**
   * Adds the COPY text-format line `bytes[start, end)`; returns a promise when a full chunk was
   * handed over. Ids stay bytes: only a line with a backslash escape is decoded to a string.
   */
  add(bytes: Uint8Array, start: number, end: number): Promise<void> | undefined {
    this.rows++;
    if (this.rows > this.rowCap) {
      throw new ResourceExhaustedError("row_cap", `the analytics query returned more than its row cap of ${this.rowCap} rows`);
    }
    const length = end - start;
    // The common case in one pass: a plain id of a valid length, copied as it is.
    if (length === 0 || length > MAX_ID_BYTES || !this.chunk.addBytes(bytes, start, end, BACKSLASH)) {
      const raw = Buffer.from(bytes.buffer, bytes.byteOffset + start, length).toString("utf8");
      const id = raw.includes("\\") ? unescapeCopyText(raw) : raw;
      this.check(id === "" ? 0 : Buffer.byteLength(id));
      this.chunk.addString(id);
    }
    if (!this.chunk.full) return undefined;
    return this.flush();
  }

  async flush(): Promise<void> {
    if (this.chunk.length === 0) return;
    await this.onIds(this.chunk.take());
  }

  private check(byteLength: number): void {
    if (byteLength === 0 || byteLength > MAX_ID_BYTES) {
      throw new InvalidArgumentError(
        "query",
        `row ${this.rows} has user_id ${byteLength === 0 ? "empty" : `of ${byteLength} bytes`}; a user id must be 1–${MAX_ID_BYTES} bytes`,
      );
    }
  }
}

/**
 * Hands each complete line of `bytes` to `chunker`, giving the event loop a turn whenever the
 * slice is used up; resolves to the offset just past the last newline.
 */
async function addLines(bytes: Uint8Array, chunker: IdChunker, signal: AbortSignal): Promise<number> {
  let start = 0;
  let lines = 0;
  for (let nl = bytes.indexOf(LF, start); nl !== -1; nl = bytes.indexOf(LF, start)) {
    const pending = chunker.add(bytes, start, nl);
    start = nl + 1;
    if (pending !== undefined) {
      await pending;
      signal.throwIfAborted();
    }
    if (++lines === LINES_PER_CHECK) {
      lines = 0;
      if (sliceDue()) {
        await nextSlice();
        signal.throwIfAborted();
      }
    }
  }
  return start;
}

const ESCAPES: Record<string, string> = { b: "\b", f: "\f", n: "\n", r: "\r", t: "\t", v: "\v", "\\": "\\" };

/** Decodes one field of COPY's text format (backslash escapes, octal and hex forms). */
export function unescapeCopyText(field: string): string {
  return field.replace(/\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)/g, (_, esc: string) => {
    if (esc.length > 1 || /[0-7]/.test(esc)) {
      return String.fromCharCode(esc[0] === "x" ? Number.parseInt(esc.slice(1), 16) : Number.parseInt(esc, 8));
    }
    return ESCAPES[esc] ?? esc;
  });
}

/** Thrown to roll back an EXPLAIN's transaction on PGlite once the plan came back. */
class ExplainedError extends Error {}

/** Postgres (the service's or ANALYTICS_DATABASE_URL): COPY TO STDOUT on a small pool of its own. */
class PostgresAnalyticsSource implements AnalyticsSource {
  private readonly pool: pg.Pool;

  constructor(
    url: string,
    private readonly role: string | undefined,
    log: Logger,
  ) {
    this.pool = new pg.Pool({ connectionString: url, max: POOL_SIZE, connectionTimeoutMillis: 10_000 });
    this.pool.on("error", (error) => log.warn({ err: error }, "idle analytics connection failed"));
  }

  async runUserIdQuery(query: UserIdQuery, limits: RunLimits, onIds: OnIds): Promise<{ rows: number }> {
    const { setup, select } = preamble(query, this.role);
    const { signal, dispose } = runSignal(limits, SERVER_GRACE_MS);
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error: unknown) {
      dispose();
      throw unavailable(error);
    }
    // Set when the connection must be dropped, not reused: dropping also ends a COPY mid-stream.
    let broken: Error | undefined;
    try {
      signal.throwIfAborted();
      await client.query("BEGIN READ ONLY");
      await client.query("SELECT set_config('statement_timeout', $1, true)", [String(limits.timeoutMs)]);
      for (const statement of setup) await client.query(statement.text, statement.params as unknown[] | undefined);
      signal.throwIfAborted();
      const chunker = new IdChunker(limits.rowCap, onIds);
      await copyOutRows(client, `COPY (${select}) TO STDOUT`, signal, (bytes, start, end) => chunker.add(bytes, start, end));
      await chunker.flush();
      await client.query("ROLLBACK");
      return { rows: chunker.rows };
    } catch (error: unknown) {
      broken = error instanceof Error ? error : new Error(String(error));
      if (signal.aborted) throw signal.reason;
      throw translate(error, limits.timeoutMs);
    } finally {
      dispose();
      client.release(broken);
    }
  }

  async explain(sql: string, timeoutMs: number): Promise<void> {
    const { setup, select } = preamble({ text: sql, params: [] }, this.role);
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error: unknown) {
      throw unavailable(error);
    }
    try {
      await client.query("BEGIN READ ONLY");
      await client.query("SELECT set_config('statement_timeout', $1, true)", [String(timeoutMs)]);
      for (const statement of setup) await client.query(statement.text, statement.params as unknown[] | undefined);
      await client.query(`EXPLAIN ${select}`);
    } catch (error: unknown) {
      throw translate(error, timeoutMs);
    } finally {
      await client.query("ROLLBACK").catch(() => undefined);
      client.release();
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/** A driver error as the domain error the caller should see. */
function translate(error: unknown, timeoutMs: number): unknown {
  if (error instanceof DomainError) return error;
  const state = sqlState(error);
  if (state === "57014") {
    return new DeadlineExceededError("timeout", `the analytics query ran longer than its ${timeoutMs} ms timeout and was cancelled`);
  }
  if (state === undefined || isRetryable(error)) return unavailable(error);
  // The source refused the query itself (read-only, permission, missing table, bad cast, …).
  const message = error instanceof Error ? error.message : String(error);
  return new InvalidArgumentError("query", `the analytics source refused the query: ${message} (SQLSTATE ${state})`);
}

/**
 * PGlite: one `COPY … TO '/dev/blob'` in the worker, its bytes split into chunks here. PGlite
 * ignores statement_timeout and cannot interrupt a statement: at the timeout the caller gets
 * DEADLINE_EXCEEDED, while the embedded database finishes the statement in the background. The
 * row cap bounds that work: the COPY stops one row past it.
 */
class PgliteAnalyticsSource implements AnalyticsSource {
  constructor(
    private readonly db: PgliteDatabase,
    private readonly role: string | undefined,
  ) {}

  async runUserIdQuery(query: UserIdQuery, limits: RunLimits, onIds: OnIds): Promise<{ rows: number }> {
    const { setup, select } = preamble(query, this.role);
    const { signal, dispose } = runSignal(limits, 0);
    try {
      // One row past the cap is enough to know it was passed: without the LIMIT a runaway query
      // (generate_series(1, 1e8)) held the only connection for 30 s after its caller had gone.
      const limit = Math.floor(limits.rowCap) + 1;
      const out = await this.db.copyOutReadOnly(setup, { text: `COPY (${select} LIMIT ${limit}) TO '/dev/blob'` }, signal);
      if (out.rowCount > limits.rowCap) {
        throw new ResourceExhaustedError("row_cap", `the analytics query returned more than its row cap of ${limits.rowCap} rows`);
      }
      const chunker = new IdChunker(limits.rowCap, onIds);
      const { bytes } = out;
      const start = await addLines(bytes, chunker, signal);
      // COPY ends every line with a newline; a last line without one counts all the same.
      if (start < bytes.length) await chunker.add(bytes, start, bytes.length);
      await chunker.flush();
      return { rows: chunker.rows };
    } catch (error: unknown) {
      if (signal.aborted) throw signal.reason;
      throw translate(error, limits.timeoutMs);
    } finally {
      dispose();
    }
  }

  async explain(sql: string, timeoutMs: number): Promise<void> {
    const { setup, select } = preamble({ text: sql, params: [] }, this.role);
    try {
      await this.db.transaction(async (tx) => {
        for (const statement of setup) await tx.query(statement.text, statement.params);
        await tx.query(`EXPLAIN ${select}`);
        // Planning only: roll back whatever the preamble set.
        throw new ExplainedError();
      });
    } catch (error: unknown) {
      if (error instanceof ExplainedError) return;
      throw translate(error, timeoutMs);
    }
  }

  async close(): Promise<void> {}
}
