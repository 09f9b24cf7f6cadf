/**
 * events: LoadEvents of seeded sample events (scripts/sample-events.ts; users/5 users with
 * --quick sizes, users/50 at full size, ~18 events per user), NDJSON streamed in 1 MiB messages
 * into the service's store — validated, into the indexed events table, all or nothing. Baseline: a
 * plain COPY of the same rows (already in COPY text format, so no parsing is charged to it) into
 * an identical index-free table on the baseline Postgres.
 */
import { once } from "node:events";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import { sampleEventLines } from "../../scripts/sample-events.js";
import { createClient } from "../../src/client/client.js";
import { EventFormat, SegmentService } from "../../src/gen/segments/v1/segment_service_pb.js";
import type { BenchContext } from "../lib/context.js";
import type { Row } from "../lib/report.js";

const CHUNK_BYTES = 1 << 20;

/** Runs the events scenario. */
export async function eventsScenario(ctx: BenchContext, log: (line: string) => void): Promise<Row[]> {
  const users = Math.max(1_000, Math.floor(ctx.options.users / (ctx.options.users <= 1_000_000 ? 5 : 50)));
  const dir = await mkdtemp(join(tmpdir(), "segments-bench-events-"));
  try {
    const ndjson = join(dir, "events.ndjson");
    const copyText = join(dir, "events.copy");
    log(`events: generating sample events for ${users.toLocaleString("en-US")} users`);
    const rows = await writeFiles(users, ctx.options.seed, ndjson, copyText);
    log(`events: LoadEvents of ${rows.toLocaleString("en-US")} events`);
    const client = createClient(SegmentService, ctx.service.address);
    let ms: number;
    try {
      const started = performance.now();
      const result = await client.loadEvents(
        (async function* () {
          for await (const chunk of createReadStream(ndjson, { highWaterMark: CHUNK_BYTES }))
            yield { format: EventFormat.NDJSON, text: chunk as Buffer };
        })(),
      );
      ms = performance.now() - started;
      if (Number(result.loaded) !== rows) throw new Error(`LoadEvents loaded ${result.loaded}, expected ${rows}`);
    } finally {
      client.close();
    }
    let baselineMs: number | undefined;
    if (ctx.postgres !== undefined) baselineMs = await plainCopy(ctx.postgres.url, ctx.postgres.schema, copyText);
    const perSecond = (elapsed: number) => Math.round((rows / elapsed) * 1000);
    return [
      {
        scenario: "events",
        figure: `LoadEvents ${rows.toLocaleString("en-US")} events (NDJSON, indexed table)`,
        unit: "rows/s",
        better: "higher",
        ours: perSecond(ms),
        baseline: "Postgres COPY, index-free table",
        baselineValue: baselineMs === undefined ? undefined : perSecond(baselineMs),
      },
    ];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Writes the sample as NDJSON and as COPY text; returns the event count. */
async function writeFiles(users: number, seed: number, ndjson: string, copyText: string): Promise<number> {
  const json = createWriteStream(ndjson);
  const copy = createWriteStream(copyText);
  let rows = 0;
  let jsonBuf = "";
  let copyBuf = "";
  const flush = async () => {
    const a = json.write(jsonBuf);
    const b = copy.write(copyBuf);
    jsonBuf = "";
    copyBuf = "";
    // Both waits start now: awaiting one first could miss the other's drain.
    await Promise.all([a ? undefined : once(json, "drain"), b ? undefined : once(copy, "drain")]);
  };
  for (const line of sampleEventLines({ users, seed, now: new Date("2026-03-01T00:00:00Z"), days: 90 })) {
    const e = JSON.parse(line) as { user_id: string; name: string; ts: string; properties: unknown };
    jsonBuf += `${line}\n`;
    // Sample ids, names and JSON hold no tab, newline or backslash: no COPY escaping needed.
    copyBuf += `${e.user_id}\t${e.name}\t${e.ts}\t${JSON.stringify(e.properties)}\n`;
    rows++;
    if (jsonBuf.length > 1 << 16) await flush();
  }
  await flush();
  await Promise.all([new Promise<void>((resolve) => json.end(() => resolve())), new Promise<void>((resolve) => copy.end(() => resolve()))]);
  return rows;
}

/** COPYs `file` into a fresh index-free events table; returns elapsed ms. */
async function plainCopy(url: string, schema: string, file: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const table = `${schema}.events_plain`;
    await client.query(
      `DROP TABLE IF EXISTS ${table}; CREATE TABLE ${table} (user_id text COLLATE "C" NOT NULL, name text NOT NULL, ts timestamptz NOT NULL, properties jsonb NOT NULL DEFAULT '{}')`,
    );
    const started = performance.now();
    await client.query("BEGIN");
    await pipeline(createReadStream(file, { highWaterMark: CHUNK_BYTES }), client.query(copyFrom(`COPY ${table} FROM STDIN`)));
    await client.query("COMMIT");
    const ms = performance.now() - started;
    await client.query(`DROP TABLE ${table}`);
    return ms;
  } finally {
    await client.end();
  }
}
