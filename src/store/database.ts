/**
 * The one seam between the service and SQL: a tiny interface that both node `pg` (real Postgres)
 * and embedded PGlite implement, so every statement and migration is shared by both.
 */
import type { OnRow } from "./copy-out.js";

/** Something that runs one parameterised statement. */
export interface Queryable {
  /** Runs `text` with `$n` parameters and returns the rows. */
  query<R>(text: string, params?: readonly unknown[]): Promise<R[]>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(script: string): Promise<void>;
}

/** A database connection (pool) with transactions. */
export interface Database extends Queryable {
  readonly kind: "postgres" | "pglite";
  /**
   * Runs `fn` in one transaction: COMMIT when it resolves, ROLLBACK when it throws. When `signal`
   * is aborted before COMMIT (while waiting for a connection, or by the time `fn` resolves), the
   * transaction rolls back and the signal's reason is thrown: a cancelled call leaves no trace.
   */
  transaction<T>(fn: (tx: Queryable) => Promise<T>, signal?: AbortSignal): Promise<T>;
  /**
   * Postgres only (undefined on PGlite): runs `text`, a `COPY … TO STDOUT`, in a read-only
   * transaction of its own without statement_timeout (it may read a whole directory), handing each
   * row's text-format bytes to `onRow` as they come off the socket.
   */
  copyOut?: (text: string, onRow: OnRow) => Promise<void>;
  /** Releases every connection; the database is unusable afterwards. */
  close(): Promise<void>;
}
