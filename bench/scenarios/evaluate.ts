/**
 * evaluate: what a dynamic segment's evaluation costs. LoadEvents puts one `seen` event per
 * dataset user into the built-in `events` table (user n at 2026-01-01T00:00:00Z + n ms, so a time
 * bound picks the first N users); a DYNAMIC segment whose SQL selects those users' ids is then
 * evaluated (EvaluateSegment) into a fresh, empty segment, for 1M and 10M users at full size or
 * every user with a smaller dataset. Every id is a known user, so the run is query + id lookup +
 * bitmap + one committed version. Figure: ids/s, against `COPY (SELECT user_id FROM (<same
 * query>) q) TO STDOUT` on the service's own database in the same run — the least any evaluation
 * must pay to read the ids (Postgres store only: on PGlite the service holds the directory locked).
 * Each side runs twice, alternately, and the faster run counts, so neither is charged a cold cache.
 *
 * Then CheckMembership p99 on the dense segment at one call in flight (a separate load process,
 * as in `check` and `import-check`), idle vs while evaluations of the largest size repeat back to
 * back, each into a new segment, for as long as one evaluation alone took (at least --duration).
 */
import { loadavg } from "node:os";
import { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import pg from "pg";
import { to as copyTo } from "pg-copy-streams";
import { createClient } from "../../src/client/client.js";
import { SegmentType } from "../../src/gen/segments/v1/segment_pb.js";
import { EventFormat, SegmentService } from "../../src/gen/segments/v1/segment_service_pb.js";
import type { BenchContext } from "../lib/context.js";
import { userId } from "../lib/dataset.js";
import { type LoadResult, runLoad } from "../lib/load.js";
import type { Row } from "../lib/report.js";

/** Query result sizes measured at full size; a smaller dataset measures all its users instead. */
const SIZES = [1_000_000, 10_000_000];
const EPOCH_MS = Date.parse("2026-01-01T00:00:00Z");
const EVENT = "seen";
/** LoadEvents messages stay well under the service's 2 MiB request limit. */
const CHUNK_BYTES = 1 << 20;
/** Timed runs of each side; the fastest counts. */
const ROUNDS = 2;

type SegmentClient = ReturnType<typeof createClient<typeof SegmentService>>;

/** Runs the evaluate scenario. */
export async function evaluateScenario(ctx: BenchContext, log: (line: string) => void): Promise<Row[]> {
  const { options } = ctx;
  const dense = ctx.segments.find((s) => s.spec.key === "dense");
  if (dense === undefined) throw new Error("the dense segment was not loaded");
  const sizes = [...new Set(SIZES.map((n) => Math.min(n, options.users)))];
  const largest = Math.max(...sizes);
  const databaseUrl = ctx.serviceEnv.DATABASE_URL;
  const copySkip =
    databaseUrl === undefined ? `PGlite store: the service holds its directory locked, so nothing else can COPY from it` : undefined;
  if (copySkip !== undefined && !ctx.skipped.includes(`evaluate COPY baseline: ${copySkip}`))
    ctx.skipped.push(`evaluate COPY baseline: ${copySkip}`);
  const client = createClient(SegmentService, ctx.service.address);
  try {
    log(
      `evaluate: load average ${loadavg()
        .map((n) => n.toFixed(2))
        .join(" ")}`,
    );
    log(`evaluate: LoadEvents of ${largest.toLocaleString("en-US")} "${EVENT}" events, one per dataset user`);
    await loadEvents(client, options.seed, largest);

    const rows: Row[] = [];
    let runs = 0;
    let largestAloneMs = 0;
    for (const size of sizes) {
      const sql = querySql(size);
      const ours: number[] = [];
      const copies: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        ours.push(await evaluateOnce(client, sql, size, ++runs));
        if (databaseUrl !== undefined) copies.push(await copyOut(databaseUrl, sql, size));
      }
      const best = Math.min(...ours);
      if (size === largest) largestAloneMs = best;
      const bestCopy = copies.length === 0 ? undefined : Math.min(...copies);
      log(
        `evaluate: ${size.toLocaleString("en-US")} ids: EvaluateSegment ${ours.map((ms) => `${Math.round(ms)} ms`).join(", ")}` +
          (copies.length === 0 ? "" : `; COPY ${copies.map((ms) => `${Math.round(ms)} ms`).join(", ")}`),
      );
      rows.push({
        scenario: "evaluate",
        figure: `EvaluateSegment, SQL over events returning ${size.toLocaleString("en-US")} known users, into an empty segment (best of ${ROUNDS})`,
        unit: "ids/s",
        better: "higher",
        ours: size / (best / 1000),
        baseline:
          copySkip === undefined
            ? "Postgres COPY (SELECT user_id FROM (same query) q) TO STDOUT, service database"
            : `COPY of the same query (skipped: ${copySkip})`,
        baselineValue: bestCopy === undefined ? undefined : size / (bestCopy / 1000),
      });
    }

    const target = { kind: "grpc-check" as const, address: ctx.service.address, segmentId: dense.id };
    const shape = { durationMs: options.durationMs, users: options.users, seed: options.seed, workers: 1, concurrency: 1 };
    log("evaluate: CheckMembership, idle");
    const idle = await runLoad(target, shape);
    log(`evaluate: CheckMembership while evaluations of ${largest.toLocaleString("en-US")} ids repeat`);
    let loadDone = false;
    const load = runLoad(target, { ...shape, durationMs: Math.max(options.durationMs, Math.round(largestAloneMs)) }).finally(() => {
      loadDone = true;
    });
    const during: number[] = [];
    do during.push(await evaluateOnce(client, querySql(largest), largest, ++runs));
    while (!loadDone);
    const busy = await load;
    reportLoads(log, { idle, busy });
    log(`evaluate: ${during.length} evaluation(s) under load, ${during.map((ms) => `${Math.round(ms)} ms`).join(", ")}`);
    const duringEval = `during EvaluateSegment of ${largest.toLocaleString("en-US")} ids`;
    for (const [figure, ours, baselineValue] of [
      ["p50", busy.p50Us, idle.p50Us],
      ["p99", busy.p99Us, idle.p99Us],
    ] as const)
      rows.push({
        scenario: "evaluate",
        figure: `CheckMembership ${figure}, 1 in flight, ${duringEval}`,
        unit: "µs",
        better: "lower",
        ours,
        baseline: "same service, idle",
        baselineValue,
      });
    return rows;
  } finally {
    client.close();
  }
}

/** The SELECT of the users 0 … size−1 (an index-only scan of events_name_ts on Postgres). */
function querySql(size: number): string {
  return `SELECT user_id FROM events WHERE name = '${EVENT}' AND ts < '${new Date(EPOCH_MS + size).toISOString()}'`;
}

/** Streams one `seen` event per user 0 … users−1 (user n at EPOCH + n ms) through LoadEvents. */
async function loadEvents(client: SegmentClient, seed: number, users: number): Promise<void> {
  const messages = function* () {
    let text = "";
    let first = true;
    for (let n = 0; n < users; n++) {
      text += `{"user_id":"${userId(seed, n)}","name":"${EVENT}","ts":"${new Date(EPOCH_MS + n).toISOString()}","properties":{}}\n`;
      if (text.length >= CHUNK_BYTES - 256 || n === users - 1) {
        yield { format: first ? EventFormat.NDJSON : EventFormat.UNSPECIFIED, text: Buffer.from(text) };
        first = false;
        text = "";
      }
    }
  };
  const result = await client.loadEvents(messages());
  if (Number(result.loaded) !== users || result.rejected !== 0n)
    throw new Error(`LoadEvents loaded ${result.loaded} and rejected ${result.rejected}, expected ${users} and 0`);
}

/** Creates a DRAFT DYNAMIC segment with `sql` and evaluates it once; returns the run's ms. */
async function evaluateOnce(client: SegmentClient, sql: string, size: number, run: number): Promise<number> {
  const { segment } = await client.createSegment({
    name: `bench evaluate ${run}`,
    type: SegmentType.DYNAMIC,
    query: { kind: { case: "sql", value: sql } },
  });
  const started = performance.now();
  const { evaluation } = await client.evaluateSegment({ segmentId: segment?.id ?? "" });
  const ms = performance.now() - started;
  if (evaluation?.total !== BigInt(size)) throw new Error(`evaluation ${run} left ${evaluation?.total} members, not ${size}`);
  return ms;
}

/** `COPY (SELECT user_id FROM (sql) q) TO STDOUT` on the service's database; returns ms. */
async function copyOut(url: string, sql: string, size: number): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    let rows = 0;
    const started = performance.now();
    await pipeline(
      client.query(copyTo(`COPY (SELECT user_id FROM (${sql}) q) TO STDOUT`)),
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          for (let i = chunk.indexOf(0x0a); i >= 0; i = chunk.indexOf(0x0a, i + 1)) rows++;
          done();
        },
      }),
    );
    const ms = performance.now() - started;
    if (rows !== size) throw new Error(`COPY returned ${rows} rows, not ${size}`);
    return ms;
  } finally {
    await client.end();
  }
}

function reportLoads(log: (line: string) => void, loads: Record<string, LoadResult>): void {
  for (const [when, result] of Object.entries(loads)) {
    const errors = Object.keys(result.errors).length > 0 ? `, errors by code ${JSON.stringify(result.errors)}` : "";
    log(`  CheckMembership ${when}: ${result.calls} calls, p50 ${result.p50Us} µs, p99 ${result.p99Us} µs${errors}`);
  }
  // The machine may be shared (a CI run): the 1-minute load average says how busy it was.
  log(
    `  load average ${loadavg()
      .map((n) => n.toFixed(2))
      .join(" ")} on this machine's cores`,
  );
}
