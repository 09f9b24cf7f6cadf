/**
 * batch-check: many users, one segment. BatchCheckMembership of 1,000 and 10,000 random dataset
 * users per call (--batch-sizes) on the dense and the sparse segment, against Redis SMISMEMBER of
 * the same ids on the same set, a Postgres `uid = ANY($2::int[])` lookup by primary key, and
 * floor-bare (a bare grpc-js server answering the same request bytes with a no-op handler). Ids per
 * second with every load worker busy (calls/s × batch), server CPU per call against floor-bare's,
 * and per-call latency at one call in flight on the dense segment. Our calls and Redis's go as
 * bytes encoded before the clock starts (load-worker.ts).
 */
import { type BareServer, startBareServer } from "../lib/bare-grpc-server.js";
import type { BenchContext, LoadedSegment } from "../lib/context.js";
import { type LoadResult, runLoad } from "../lib/load.js";
import type { Target } from "../lib/load-worker.js";
import type { Row } from "../lib/report.js";
import { FLOOR_BARE } from "./check.js";

const SEGMENTS = ["dense", "sparse"] as const;
/** Per-call latency is measured on this segment only: the throughput figures show the segment's effect. */
const LATENCY_SEGMENT = "dense";

/** Each system: its name, its target (undefined: unreachable), and the pid of the server whose CPU is read. */
type Systems = [name: string, target: Target | undefined, serverPid?: number][];

/** Runs the batch-check scenario. */
export async function batchCheck(ctx: BenchContext, log: (line: string) => void): Promise<Row[]> {
  const rows: Row[] = [];
  const bare = await startBareServer();
  try {
    for (const key of SEGMENTS) {
      const segment = ctx.segments.find((s) => s.spec.key === key);
      if (segment === undefined) throw new Error(`the ${key} segment was not loaded`);
      for (const batch of ctx.options.batchSizes) rows.push(...(await measure(ctx, log, segment, batch, bare)));
    }
  } finally {
    await bare.stop();
  }
  return rows;
}

/**
 * The systems on one segment at one batch size. floor-bare gets the same request bytes as ours
 * and answers none of them: what grpc-js alone costs a call of that size.
 */
function systems(ctx: BenchContext, segment: LoadedSegment, batch: number, bare: BareServer): Systems {
  return [
    ["ours", { kind: "grpc-batch-check", address: ctx.service.address, segmentId: segment.id, batch }, ctx.service.child.pid],
    [FLOOR_BARE, { kind: "grpc-batch-check", address: bare.address, segmentId: segment.id, batch }, bare.pid],
    ["Redis SMISMEMBER", ctx.redis && { kind: "redis-smismember", url: ctx.redis.url, key: ctx.redis.key(segment.spec.key), batch }],
    [
      "Postgres uid = ANY($2::int[])",
      ctx.postgres && { kind: "pg-batch", url: ctx.postgres.url, table: ctx.postgres.table, segmentId: segment.number, batch },
    ],
  ];
}

async function measure(
  ctx: BenchContext,
  log: (line: string) => void,
  segment: LoadedSegment,
  batch: number,
  bare: BareServer,
): Promise<Row[]> {
  const { options } = ctx;
  const shape = { durationMs: options.durationMs, users: options.users, seed: options.seed };
  const key = segment.spec.key;
  const withLatency = key === LATENCY_SEGMENT;
  const results = new Map<string, { throughput: LoadResult; latency: LoadResult | undefined } | undefined>();
  for (const [name, target, serverPid] of systems(ctx, segment, batch, bare)) {
    if (target === undefined) {
      results.set(name, undefined);
      continue;
    }
    log(`batch-check: ${name}, ${key}, ${batch.toLocaleString("en-US")} ids per call`);
    const throughput = await runLoad(target, { ...shape, workers: options.workers, concurrency: options.concurrency, serverPid });
    const latency = withLatency ? await runLoad(target, { ...shape, workers: 1, concurrency: 1 }) : undefined;
    for (const result of [throughput, latency]) {
      if (result !== undefined && Object.keys(result.errors).length > 0) log(`  ${name}: errors by code ${JSON.stringify(result.errors)}`);
    }
    log(`  ${Math.round(throughput.callsPerSecond * batch).toLocaleString("en-US")} ids/s`);
    results.set(name, { throughput, latency });
  }
  const ours = results.get("ours");
  if (ours === undefined) throw new Error("our own batch check did not run");
  const calls = `${batch.toLocaleString("en-US")}-id calls, ${key}`;
  const busy = `${options.workers}×${options.concurrency} in flight`;
  // [figure, unit, better, value, the only baseline it is shown against (undefined: every one)]
  const figures: [string, string, Row["better"], (r: NonNullable<typeof ours>) => number | undefined, string?][] = [
    [`ids/s, ${calls}, ${busy}`, "ids/s", "higher", (r) => r.throughput.callsPerSecond * batch],
    // Only the gRPC servers' CPU is read (the others are not our processes): what a call costs
    // beyond the transport's own.
    [`server CPU per call, ${calls}, ${busy}`, "µs", "lower", (r) => r.throughput.serverCpuUsPerCall, FLOOR_BARE],
  ];
  if (withLatency) {
    figures.push(
      [`p50 latency per call, ${calls}, 1 in flight`, "µs", "lower", (r) => r.latency?.p50Us],
      [`p99 latency per call, ${calls}, 1 in flight`, "µs", "lower", (r) => r.latency?.p99Us],
    );
  }
  const rows: Row[] = [];
  for (const [figure, unit, better, value, only] of figures) {
    for (const [name, result] of results) {
      if (name === "ours" || (only !== undefined && name !== only)) continue;
      const baselineValue = result === undefined ? undefined : value(result);
      rows.push({ scenario: "batch-check", figure, unit, better, ours: value(ours) ?? 0, baseline: name, baselineValue });
    }
  }
  return rows;
}
