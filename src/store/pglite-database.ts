/** Database over embedded PGlite (WASM Postgres): the zero-setup default, files in DATA_DIR. */
import { PGlite } from "@electric-sql/pglite";
import { checkpoint, throwIfOver } from "../cancellation.js";
import { StartupError, UnavailableError } from "../errors.js";
import { type DataDirLock, lockDataDir } from "./data-dir-lock.js";
import type { Database, Queryable } from "./database.js";

/** An embedded Postgres in one directory. PGlite is single-connection: statements queue. */
export class PgliteDatabase implements Database {
  readonly kind = "pglite";

  private constructor(
    private readonly db: PGlite,
    private readonly lock: DataDirLock,
    /** Longest wait for the single connection before a transaction gives up (DB_LOCK_TIMEOUT_MS). */
    private readonly waitMs: number,
  ) {}

  /** Locks `dataDir` and opens (creating if needed) the database in it; takes a few seconds. */
  static async open(dataDir: string, waitMs: number): Promise<PgliteDatabase> {
    const lock = await lockDataDir(dataDir);
    try {
      return new PgliteDatabase(await PGlite.create({ dataDir }), lock, waitMs);
    } catch (error: unknown) {
      await lock.release();
      throw new StartupError(`cannot open the embedded database in DATA_DIR ${dataDir}`, { cause: error });
    }
  }

  async query<R>(text: string, params?: readonly unknown[]): Promise<R[]> {
    return (await this.db.query<R>(text, params as unknown[] | undefined)).rows;
  }

  /**
   * One transaction on the single connection. Waiting for the connection is bounded and
   * abortable: a caller that gave up is never run later, when its turn finally comes.
   */
  async transaction<T>(fn: (tx: Queryable) => Promise<T>, signal?: AbortSignal): Promise<T> {
    let abandoned: unknown;
    let started = false;
    const work = this.db.transaction(async (tx) => {
      started = true;
      if (abandoned !== undefined) throw abandoned;
      throwIfOver(signal);
      const result = await fn({
        query: async <R>(text: string, params?: readonly unknown[]) => (await tx.query<R>(text, params as unknown[] | undefined)).rows,
        exec: async (script: string) => void (await tx.exec(script)),
      });
      // The last moment a cancellation or a passed deadline can still undo the change.
      await checkpoint(signal);
      return result;
    });
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const gaveUp = new Promise<never>((_, reject) => {
      const giveUp = (reason: unknown) => {
        if (started) return;
        abandoned = reason;
        reject(reason);
      };
      timer = setTimeout(
        () =>
          giveUp(
            new UnavailableError(
              `the embedded database stayed busy for ${this.waitMs} ms (DB_LOCK_TIMEOUT_MS); nothing was changed, retry later`,
            ),
          ),
        this.waitMs,
      );
      onAbort = () => giveUp(signal?.reason);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
    // Once abandoned, the queued transaction still runs (and rolls back) later: swallow that.
    work.catch(() => undefined);
    try {
      return await Promise.race([work, gaveUp]);
    } finally {
      clearTimeout(timer);
      if (onAbort !== undefined) signal?.removeEventListener("abort", onAbort);
    }
  }

  async exec(script: string): Promise<void> {
    await this.db.exec(script);
  }

  async close(): Promise<void> {
    try {
      await this.db.close();
    } finally {
      await this.lock.release();
    }
  }
}
