/**
 * The analytics runner on both stores: ids stream in bounded chunks, exactly once; the row cap,
 * the timeout, READ ONLY and ANALYTICS_ROLE each stop a query with the error the proto promises.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { DeadlineExceededError, InvalidArgumentError, ResourceExhaustedError } from "../../src/errors.js";
import { createLogger } from "../../src/logging.js";
import { type AnalyticsSource, CHUNK_IDS, openAnalyticsSource, type UserIdQuery } from "../../src/store/analytics-source.js";
import type { Database } from "../../src/store/database.js";
import { migrate } from "../../src/store/migrate.js";
import { STORES, type TestStore } from "../support/stores.js";

const log = createLogger({ level: "silent" });
const LIMITS = { timeoutMs: 30_000, rowCap: 1_000_000 };

/** Runs `query` and collects every chunk. */
async function collect(source: AnalyticsSource, query: UserIdQuery, limits = LIMITS): Promise<{ chunks: string[][]; rows: number }> {
  const chunks: string[][] = [];
  const { rows } = await source.runUserIdQuery(query, limits, (ids) => {
    chunks.push([...ids]);
  });
  return { chunks, rows };
}

describe.each(STORES)("analytics source on $name", (kind) => {
  let store: TestStore;
  let db: Database;
  let source: AnalyticsSource;

  beforeAll(async () => {
    store = await kind.create();
    const config = loadConfig(store.env);
    db = await openDatabase(config, log);
    await migrate(db);
    await db.query("INSERT INTO events (user_id, name, ts) VALUES ('u1', 'signup', now()), ('u2', 'page_view', now())");
    await db.exec(
      `CREATE FUNCTION write_event() RETURNS text LANGUAGE sql AS
       $$ INSERT INTO events (user_id, name, ts) VALUES ('w', 'write', now()) RETURNING user_id $$`,
    );
    source = openAnalyticsSource({ db, databaseUrl: config.databaseUrl, analyticsDatabaseUrl: undefined, analyticsRole: undefined, log });
  });
  afterAll(async () => {
    await source?.close();
    await db?.close();
    await store?.drop();
  });

  it("streams 200,000 ids exactly once, in chunks of at most CHUNK_IDS", async () => {
    const { chunks, rows } = await collect(source, {
      text: "SELECT 'u' || g AS user_id FROM generate_series(1, $1::int) g",
      params: [200_000],
    });
    expect(rows).toBe(200_000);
    expect(chunks.length).toBe(200_000 / CHUNK_IDS);
    expect(Math.max(...chunks.map((c) => c.length))).toBe(CHUNK_IDS);
    const all = chunks.flat();
    expect(all.length).toBe(200_000);
    expect(new Set(all).size).toBe(200_000);
    expect(all.includes("u1") && all.includes("u200000")).toBe(true);
  });

  it("skips NULL ids and decodes COPY escapes (tab, newline, carriage return, backslash)", async () => {
    const text = "SELECT unnest(ARRAY[E'a\\tb', E'c\\nd', E'e\\rf', E'g\\\\h', NULL, 'é€😀']) AS user_id";
    const { chunks, rows } = await collect(source, { text, params: [] });
    expect(chunks.flat()).toEqual(["a\tb", "c\nd", "e\rf", "g\\h", "é€😀"]);
    expect(rows).toBe(5);
  });

  it("checks an escaped id's length once decoded: 200 tabs are 400 bytes on the wire but a valid 200-byte id", async () => {
    const { chunks } = await collect(source, { text: "SELECT repeat(E'\\t', 200) AS user_id", params: [] });
    expect(chunks.flat()).toEqual(["\t".repeat(200)]);
  });

  it("passes parameters as values: quotes and semicolons stay inert", async () => {
    const evil = "x'); DROP TABLE events; --";
    const at = new Date("2026-01-02T03:04:05Z");
    const { chunks } = await collect(source, {
      text: "SELECT $1 AS user_id UNION ALL SELECT to_char($2 AT TIME ZONE 'UTC', 'YYYY-MM-DD') UNION ALL SELECT user_id FROM events WHERE name = ANY($3)",
      params: [evil, at, ["signup", "it's"]],
    });
    expect(chunks.flat()).toEqual([evil, "2026-01-02", "u1"]);
    const [count] = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM events");
    expect(count?.n).toBe(2);
  });

  it("stops a query over the row cap with RESOURCE_EXHAUSTED naming the cap, and hands out nothing", async () => {
    const chunks: string[][] = [];
    const run = source.runUserIdQuery(
      { text: "SELECT 'u' || g AS user_id FROM generate_series(1, 5000) g", params: [] },
      { ...LIMITS, rowCap: 4_999 },
      (ids) => {
        chunks.push([...ids]);
      },
    );
    await expect(run).rejects.toThrow(ResourceExhaustedError);
    await expect(run).rejects.toThrow(/row cap of 4999/);
    expect(chunks).toEqual([]);
    // The source is still usable afterwards.
    expect((await collect(source, { text: "SELECT user_id FROM events", params: [] })).rows).toBe(2);
  });

  it("rejects a row whose user_id is empty or longer than 256 bytes, naming the row", async () => {
    const empty = source.runUserIdQuery({ text: "SELECT unnest(ARRAY['a', '']) AS user_id", params: [] }, LIMITS, () => undefined);
    await expect(empty).rejects.toThrow(InvalidArgumentError);
    await expect(empty).rejects.toThrow(/row 2 has user_id empty/);
    const long = source.runUserIdQuery({ text: "SELECT repeat('x', 257) AS user_id", params: [] }, LIMITS, () => undefined);
    await expect(long).rejects.toThrow(/row 1 has user_id of 257 bytes/);
  });

  it("runs READ ONLY: a query that writes fails and changes nothing", async () => {
    const run = collect(source, { text: "SELECT write_event() AS user_id", params: [] });
    await expect(run).rejects.toThrow(InvalidArgumentError);
    await expect(run).rejects.toThrow(/read-only transaction/);
    const [count] = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM events");
    expect(count?.n).toBe(2);
  });

  it("stops with the signal's reason when the caller aborts", async () => {
    const controller = new AbortController();
    const reason = new Error("caller went away");
    const run = source.runUserIdQuery(
      { text: "SELECT 'u' || g AS user_id FROM generate_series(1, 100000) g", params: [] },
      { ...LIMITS, signal: controller.signal },
      () => controller.abort(reason),
    );
    await expect(run).rejects.toBe(reason);
  });

  if (kind.name === "postgres") {
    it("cancels a query past its timeout with DEADLINE_EXCEEDED naming the timeout", async () => {
      const run = collect(source, { text: "SELECT pg_sleep(5), 'x' AS user_id", params: [] }, { ...LIMITS, timeoutMs: 500 });
      await expect(run).rejects.toThrow(DeadlineExceededError);
      await expect(run).rejects.toThrow(/500 ms timeout/);
    });
  } else {
    it("abandons a query past its timeout with DEADLINE_EXCEEDED; the store serves again once the statement ends", async () => {
      const run = collect(source, { text: "SELECT pg_sleep(2), 'x' AS user_id", params: [] }, { ...LIMITS, timeoutMs: 300 });
      await expect(run).rejects.toThrow(DeadlineExceededError);
      await expect(run).rejects.toThrow(/300 ms timeout/);
      // PGlite cannot interrupt the sleep: this waits for it, then runs (the transaction was rolled back).
      const [count] = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM events");
      expect(count?.n).toBe(2);
    });
  }
});

describe("ANALYTICS_ROLE on postgres", () => {
  const kind = STORES.find((k) => k.name === "postgres");
  if (kind === undefined) throw new Error("no postgres store kind");
  const role = `segments_analytics_${process.pid}`;
  let store: TestStore;
  let db: Database;
  let source: AnalyticsSource;

  beforeAll(async () => {
    store = await kind.create();
    const config = loadConfig(store.env);
    db = await openDatabase(config, log);
    await migrate(db);
    await db.query("INSERT INTO events (user_id, name, ts) VALUES ('u1', 'signup', now())");
    // The GRANTs README.md "Analytics source" documents.
    await db.exec(`CREATE ROLE ${role} NOLOGIN; GRANT USAGE ON SCHEMA public TO ${role}; GRANT SELECT ON events TO ${role};`);
    source = openAnalyticsSource({ db, databaseUrl: config.databaseUrl, analyticsDatabaseUrl: undefined, analyticsRole: role, log });
  });
  afterAll(async () => {
    await source?.close();
    await db?.close();
    await store?.drop();
    const admin = new pg.Client({ connectionString: store.env.DATABASE_URL?.replace(/\/[^/]*$/, "/postgres") });
    await admin.connect();
    await admin.query(`DROP ROLE IF EXISTS ${role}`).finally(() => admin.end());
  });

  it("reads events as the role", async () => {
    expect((await collect(source, { text: "SELECT user_id FROM events", params: [] })).chunks.flat()).toEqual(["u1"]);
  });

  it("cannot read another table: permission denied", async () => {
    const run = collect(source, { text: "SELECT id::text AS user_id FROM segments", params: [] });
    await expect(run).rejects.toThrow(InvalidArgumentError);
    await expect(run).rejects.toThrow(/permission denied for table segments/);
  });
});
