/** Database over node `pg` against a real Postgres (used when DATABASE_URL is set). */
import pg from "pg";
import type { Logger } from "pino";
import type { Database, Queryable } from "./database.js";
import { isConnectionError, unavailable } from "./sql-errors.js";

// Counts and versions are int8 but stay far below 2^53: parse them as numbers, as PGlite does.
const types = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === pg.types.builtins.INT8 ? Number : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/** A pooled connection to Postgres. */
export class PostgresDatabase implements Database {
  readonly kind = "postgres";
  private readonly pool: pg.Pool;

  constructor(connectionString: string, log: Logger, max = 10) {
    this.pool = new pg.Pool({ connectionString, max, types, connectionTimeoutMillis: 5_000 });
    // An idle client losing its connection must not crash the process; the pool replaces it.
    this.pool.on("error", (error) => log.warn({ err: error }, "idle database connection failed"));
  }

  async query<R>(text: string, params?: readonly unknown[]): Promise<R[]> {
    try {
      const result = await this.pool.query(text, params as unknown[] | undefined);
      return result.rows as R[];
    } catch (error: unknown) {
      throw isConnectionError(error) ? unavailable(error) : error;
    }
  }

  async exec(script: string): Promise<void> {
    await this.query(script);
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error: unknown) {
      throw unavailable(error);
    }
    const tx: Queryable = {
      query: async <R>(text: string, params?: readonly unknown[]) =>
        (await client.query(text, params as unknown[] | undefined)).rows as R[],
      exec: async (script: string) => void (await client.query(script)),
    };
    let broken: unknown;
    try {
      await client.query("BEGIN");
      const result = await fn(tx);
      await client.query("COMMIT");
      return result;
    } catch (error: unknown) {
      broken = await client.query("ROLLBACK").then(
        () => undefined,
        (rollbackError: unknown) => rollbackError,
      );
      throw isConnectionError(error) ? unavailable(error) : error;
    } finally {
      // A client whose ROLLBACK failed is in an unknown state: destroy it rather than reuse it.
      client.release(broken instanceof Error ? broken : undefined);
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
