/**
 * Baseline: "just query Postgres". A `membership(segment_id, uid)` table with a primary key, in a
 * schema of its own, loaded with COPY. It is given integer uids: the id mapping our service does
 * is not charged to it.
 */

import { once } from "node:events";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import pg from "pg";
import { from as copyFrom, to as copyTo } from "pg-copy-streams";

/** A Postgres server holding the benchmark's membership table. */
export class PostgresBaseline {
  readonly schema = `segments_bench_${process.pid}`;

  private constructor(
    private readonly pool: pg.Pool,
    readonly url: string,
  ) {}

  /** Connects and creates the table, or returns why the baseline is skipped. */
  static async connect(url: string): Promise<PostgresBaseline | string> {
    const pool = new pg.Pool({ connectionString: url, max: 2, connectionTimeoutMillis: 2_000 });
    pool.on("error", () => undefined);
    try {
      const baseline = new PostgresBaseline(pool, url);
      await pool.query(`DROP SCHEMA IF EXISTS ${baseline.schema} CASCADE; CREATE SCHEMA ${baseline.schema}`);
      await pool.query(`CREATE TABLE ${baseline.table} (segment_id integer NOT NULL, uid integer NOT NULL, PRIMARY KEY (segment_id, uid))`);
      return baseline;
    } catch (error: unknown) {
      await pool.end().catch(() => undefined);
      return `Postgres at ${url} unreachable (${error instanceof Error ? error.message : String(error)})`;
    }
  }

  /** The schema-qualified table name. */
  get table(): string {
    return `${this.schema}.membership`;
  }

  /** COPYs every member of `segmentId`; returns elapsed ms. */
  load(segmentId: number, batches: Iterable<number[]>): Promise<number> {
    return this.copyIn(
      (function* () {
        for (const batch of batches) yield batch.map((uid) => `${segmentId}\t${uid}\n`).join("");
      })(),
    );
  }

  /** COPYs the members of many segments: one list of uids per segment, segment_id `first` + its index. */
  loadSegments(first: number, members: readonly number[][]): Promise<number> {
    return this.copyIn(
      (function* () {
        for (const [i, uids] of members.entries()) yield uids.map((uid) => `${first + i}\t${uid}\n`).join("");
      })(),
    );
  }

  /**
   * COPYs (uid, external_id) rows into a table with no index at all: the fastest way Postgres
   * can store a user list, the yardstick for our new-user path. Returns elapsed ms.
   */
  async copyUsers(batches: Iterable<{ uid: number; id: string }[]>): Promise<number> {
    const table = `${this.schema}.users_plain`;
    await this.pool.query(`DROP TABLE IF EXISTS ${table}; CREATE TABLE ${table} (uid integer NOT NULL, external_id text NOT NULL)`);
    // The rows are written to a file first, so the clock times Postgres, not the id generator.
    const dir = await mkdtemp(join(tmpdir(), "segments-bench-copy-"));
    try {
      const file = join(dir, "users.tsv");
      const out = createWriteStream(file);
      for (const batch of batches) if (!out.write(batch.map(({ uid, id }) => `${uid}\t${id}\n`).join(""))) await once(out, "drain");
      await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
      return await this.copyIn(createReadStream(file, { highWaterMark: 1 << 20 }), `COPY ${table} (uid, external_id) FROM STDIN`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  private async copyIn(
    text: Iterable<string> | NodeJS.ReadableStream,
    statement = `COPY ${this.table} (segment_id, uid) FROM STDIN`,
  ): Promise<number> {
    const started = performance.now();
    const client = await this.pool.connect();
    try {
      await pipeline(Symbol.iterator in text ? Readable.from(text) : text, client.query(copyFrom(statement)));
    } finally {
      client.release();
    }
    return performance.now() - started;
  }

  /**
   * Gathers planner statistics for the membership table. Untimed, after loading: without them
   * `uid = ANY($2)` of a 1,000-id batch is estimated to match most of the table, so Postgres scans
   * all 11M rows per call and no call finished inside a window (`--scenario batch-check,bulk`
   * right after loading; a full run had usually given autovacuum time to analyze first).
   */
  async analyze(): Promise<void> {
    await this.pool.query(`ANALYZE ${this.table}`);
  }

  /** Counts the members of `from` not in `minus` with EXCEPT; returns elapsed ms. */
  async exceptCount(from: number, minus: number): Promise<number> {
    const started = performance.now();
    await this.pool.query(
      `SELECT count(*) FROM (SELECT uid FROM ${this.table} WHERE segment_id = $1 EXCEPT SELECT uid FROM ${this.table} WHERE segment_id = $2) d`,
      [from, minus],
    );
    return performance.now() - started;
  }

  /** `(∪ include) − exclude` over the membership table, as SQL (our own integers, inlined so COPY can take it). */
  audienceSql(include: readonly number[], exclude: number): string {
    const members = (segment: number) => `SELECT uid FROM ${this.table} WHERE segment_id = ${Math.trunc(segment)}`;
    return `${include.map(members).join(" UNION ")} EXCEPT ${members(exclude)}`;
  }

  /** The audience counted with UNION / EXCEPT. */
  async audienceCount(include: readonly number[], exclude: number): Promise<number> {
    const rows = await this.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM (${this.audienceSql(include, exclude)}) a`);
    return rows.rows[0]?.n ?? 0;
  }

  /** The audience read out with `COPY (…) TO STDOUT`; returns the rows read. */
  async audienceCopy(include: readonly number[], exclude: number): Promise<number> {
    const client = await this.pool.connect();
    let rows = 0;
    try {
      await pipeline(
        client.query(copyTo(`COPY (${this.audienceSql(include, exclude)}) TO STDOUT`)),
        new Writable({
          write(chunk: Buffer, _encoding, done) {
            for (let i = chunk.indexOf(0x0a); i >= 0; i = chunk.indexOf(0x0a, i + 1)) rows++;
            done();
          },
        }),
      );
    } finally {
      client.release();
    }
    return rows;
  }

  /** A secondary index on uid, for "which segments is this user in?"; returns elapsed ms. */
  async indexUid(): Promise<number> {
    const started = performance.now();
    await this.pool.query(`CREATE INDEX IF NOT EXISTS membership_uid ON ${this.table} (uid)`);
    await this.pool.query(`ANALYZE ${this.table}`);
    return performance.now() - started;
  }

  /** Table plus index size, in bytes. */
  async relationSize(): Promise<number> {
    await this.pool.query(`VACUUM ANALYZE ${this.table}`);
    const rows = await this.pool.query<{ size: string }>("SELECT pg_total_relation_size($1::regclass) AS size", [this.table]);
    return Number(rows.rows[0]?.size);
  }

  /** Reads every membership row out with COPY (what warming a cache from Postgres costs). */
  async scanAll(): Promise<{ ms: number; rows: number }> {
    const started = performance.now();
    const client = await this.pool.connect();
    let rows = 0;
    try {
      await pipeline(
        client.query(copyTo(`COPY (SELECT segment_id, uid FROM ${this.table}) TO STDOUT`)),
        new Writable({
          write(chunk: Buffer, _encoding, done) {
            for (let i = chunk.indexOf(0x0a); i >= 0; i = chunk.indexOf(0x0a, i + 1)) rows++;
            done();
          },
        }),
      );
      if (rows === 0) throw new Error("the membership table is empty");
    } finally {
      client.release();
    }
    return { ms: performance.now() - started, rows };
  }

  /** Drops the schema and disconnects. */
  async close(): Promise<void> {
    await this.pool.query(`DROP SCHEMA IF EXISTS ${this.schema} CASCADE`);
    await this.pool.end();
  }
}
