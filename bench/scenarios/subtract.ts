/**
 * subtract: A := A − B with A = every user and B = every other user (10M − 5M at full size).
 * Ours is one SubtractSegment call (a durable version); Redis is SDIFFSTORE; Postgres is an
 * EXCEPT of the two memberships, counted.
 */
import { createClient } from "../../src/client/client.js";
import { SegmentService } from "../../src/gen/segments/v1/segment_service_pb.js";
import type { BenchContext } from "../lib/context.js";
import type { Row } from "../lib/report.js";
import { importSegment, numbers } from "./import.js";

/** Runs the subtract scenario (after `import`, whose segment is A). */
export async function subtractScenario(ctx: BenchContext, log: (line: string) => void): Promise<Row[]> {
  const minuend = ctx.extra.importedAll ?? (await importSegment(ctx, "bench subtract all", 1)).id;
  log("subtract: loading B = every other user");
  const half = await importSegment(ctx, "bench subtract half", 2);
  const client = createClient(SegmentService, ctx.service.address);
  let ms: number;
  let removed: bigint;
  try {
    const started = performance.now();
    removed = (await client.subtractSegment({ segmentId: minuend, subtractSegmentId: half.id })).removed;
    ms = performance.now() - started;
  } finally {
    client.close();
  }
  if (Number(removed) !== half.size) throw new Error(`SubtractSegment removed ${removed}, expected ${half.size}`);
  let redisMs: number | undefined;
  if (ctx.redis !== undefined) {
    if (ctx.extra.importedAll === undefined) await ctx.redis.load("import-all", numbers(ctx.options.users), ctx.options.seed);
    await ctx.redis.load("half", numbers(ctx.options.users, 2), ctx.options.seed);
    redisMs = await ctx.redis.diffStore("subtracted", "import-all", "half");
  }
  let postgresMs: number | undefined;
  if (ctx.postgres !== undefined) {
    if (ctx.extra.importedAll === undefined) await ctx.postgres.load(10, numbers(ctx.options.users));
    await ctx.postgres.load(11, numbers(ctx.options.users, 2));
    postgresMs = await ctx.postgres.exceptCount(10, 11);
  }
  const figure = `SubtractSegment ${ctx.options.users.toLocaleString("en-US")} − ${half.size.toLocaleString("en-US")}`;
  return [
    { scenario: "subtract", figure, unit: "ms", better: "lower", ours: ms, baseline: "Redis SDIFFSTORE", baselineValue: redisMs },
    { scenario: "subtract", figure, unit: "ms", better: "lower", ours: ms, baseline: "Postgres EXCEPT (count)", baselineValue: postgresMs },
  ];
}
