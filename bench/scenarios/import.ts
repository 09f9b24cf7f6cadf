/**
 * import: ImportMembers streams every user (all already in the directory) into a new segment as
 * one version, against Redis SADD and Postgres COPY of the same members. The segment it builds
 * is `subtract`'s minuend.
 */

import { createClient } from "../../src/client/client.js";
import { SegmentType } from "../../src/gen/segments/v1/segment_pb.js";
import { SegmentService } from "../../src/gen/segments/v1/segment_service_pb.js";
import type { BenchContext } from "../lib/context.js";
import { encodeImport, rawClient, sendImport } from "../lib/encoded.js";
import type { Row } from "../lib/report.js";

const CHUNK = 100_000;

/** User numbers from..to in batches, optionally only every `step`-th. */
export function* numbers(users: number, step = 1): Generator<number[]> {
  let batch: number[] = [];
  for (let n = 0; n < users; n += step) {
    batch.push(n);
    if (batch.length === CHUNK) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

/** Imports users 0, step, 2·step, … into a new ACTIVE segment; returns its id and the elapsed ms. */
export function importSegment(ctx: BenchContext, name: string, step: number): Promise<{ id: string; ms: number; size: number }> {
  return importNumbers(ctx, name, numbers(ctx.options.users, step));
}

/** Imports the dataset users `batches` names, in one ImportMembers stream, into a new ACTIVE segment. */
export async function importNumbers(
  ctx: BenchContext,
  name: string,
  batches: Iterable<number[]>,
): Promise<{ id: string; ms: number; size: number }> {
  const client = createClient(SegmentService, ctx.service.address);
  try {
    const { segment } = await client.createSegment({ name, type: SegmentType.STATIC });
    const id = segment?.id ?? "";
    // Made and encoded before the clock starts (see encoded.ts).
    const messages = encodeImport(id, batches, ctx.options.seed);
    const raw = rawClient(ctx.service.address);
    const started = performance.now();
    const result = await sendImport(raw, messages).finally(() => raw.close());
    const ms = performance.now() - started;
    // The acceptance: however large, an import lands as exactly one version.
    if (result.version !== 1n) throw new Error(`the import of ${result.memberCount} ids made version ${result.version}, not 1`);
    await client.activateSegment({ segmentId: id });
    return { id, ms, size: Number(result.memberCount) };
  } finally {
    client.close();
  }
}

/** Runs the import scenario and remembers the imported segment for `subtract`. */
export async function importScenario(ctx: BenchContext, log: (line: string) => void): Promise<Row[]> {
  log(`import: ${ctx.options.users.toLocaleString("en-US")} ids in one ImportMembers stream`);
  const all = await importSegment(ctx, "bench import all", 1);
  ctx.extra.importedAll = all.id;
  const redisMs = ctx.redis === undefined ? undefined : await ctx.redis.load("import-all", numbers(ctx.options.users), ctx.options.seed);
  const postgresMs = ctx.postgres === undefined ? undefined : await ctx.postgres.load(10, numbers(ctx.options.users));
  const rate = (ms: number | undefined) => (ms === undefined ? undefined : all.size / (ms / 1000));
  const figure = `ImportMembers, ${all.size.toLocaleString("en-US")} known ids, one version`;
  return [
    {
      scenario: "import",
      figure,
      unit: "ids/s",
      better: "higher",
      ours: rate(all.ms) ?? 0,
      baseline: "Redis SADD, pipelined",
      baselineValue: rate(redisMs),
    },
    {
      scenario: "import",
      figure,
      unit: "ids/s",
      better: "higher",
      ours: rate(all.ms) ?? 0,
      baseline: "Postgres COPY",
      baselineValue: rate(postgresMs),
    },
  ];
}
