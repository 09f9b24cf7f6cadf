/** Database over embedded PGlite (WASM Postgres): the zero-setup default, files in DATA_DIR. */
import { PGlite } from "@electric-sql/pglite";
import { StartupError } from "../errors.js";
import { type DataDirLock, lockDataDir } from "./data-dir-lock.js";
import type { Database, Queryable } from "./database.js";

/** An embedded Postgres in one directory. PGlite is single-connection: statements queue. */
export class PgliteDatabase implements Database {
  readonly kind = "pglite";

  private constructor(
    private readonly db: PGlite,
    private readonly lock: DataDirLock,
  ) {}

  /** Locks `dataDir` and opens (creating if needed) the database in it; takes a few seconds. */
  static async open(dataDir: string): Promise<PgliteDatabase> {
    const lock = await lockDataDir(dataDir);
    try {
      return new PgliteDatabase(await PGlite.create({ dataDir }), lock);
    } catch (error: unknown) {
      await lock.release();
      throw new StartupError(`cannot open the embedded database in DATA_DIR ${dataDir}`, { cause: error });
    }
  }

  async query<R>(text: string, params?: readonly unknown[]): Promise<R[]> {
    return (await this.db.query<R>(text, params as unknown[] | undefined)).rows;
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.db.transaction(async (tx) =>
      fn({
        query: async <R>(text: string, params?: readonly unknown[]) => (await tx.query<R>(text, params as unknown[] | undefined)).rows,
        exec: async (script: string) => void (await tx.exec(script)),
      }),
    );
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
