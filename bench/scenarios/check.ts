/**
 * check: unary CheckMembership on the dense segment, against the transport floor (a no-op
 * health check on our server), Redis SISMEMBER and a Postgres primary-key lookup. Latency at
 * one call in flight; throughput with every worker's loops busy.
 */
import type { BenchContext } from "../lib/context.js";
import { runLoad } from "../lib/load.js";
import type { Target } from "../lib/load-worker.js";
import type { Row } from "../lib/report.js";

/** Runs the check scenario. */
export async function check(ctx: BenchContext, log: (line: string) => void): Promise<Row[]> {
  const { options } = ctx;
  const dense = ctx.segments.find((s) => s.spec.key === "dense");
  if (dense === undefined) throw new Error("the dense segment was not loaded");
  const targets: [string, Target | string][] = [
    ["ours", { kind: "grpc-check", address: ctx.service.address, segmentId: dense.id }],
    ["gRPC floor (no-op health check)", { kind: "grpc-noop", address: ctx.service.address }],
    ["Redis SISMEMBER", ctx.redis === undefined ? "skipped" : { kind: "redis-sismember", url: ctx.redis.url, key: ctx.redis.key("dense") }],
    [
      "Postgres PK lookup",
      ctx.postgres === undefined
        ? "skipped"
        : { kind: "pg-point", url: ctx.postgres.url, table: ctx.postgres.table, segmentId: dense.number },
    ],
  ];
  const shape = { durationMs: options.durationMs, users: options.users, seed: options.seed };
  const results = new Map<
    string,
    { latency: Awaited<ReturnType<typeof runLoad>>; throughput: Awaited<ReturnType<typeof runLoad>> } | undefined
  >();
  for (const [name, target] of targets) {
    if (typeof target === "string") {
      results.set(name, undefined);
      continue;
    }
    log(`check: ${name}`);
    const latency = await runLoad(target, { ...shape, workers: 1, concurrency: 1 });
    const throughput = await runLoad(target, { ...shape, workers: options.workers, concurrency: options.concurrency });
    for (const [mode, result] of [
      ["latency", latency],
      ["throughput", throughput],
    ] as const) {
      const failed = Object.entries(result.errors);
      if (failed.length > 0) log(`  ${name} ${mode}: errors by code ${JSON.stringify(result.errors)}`);
    }
    results.set(name, { latency, throughput });
  }
  const ours = results.get("ours");
  if (ours === undefined) throw new Error("our own check did not run");
  const inFlight = `${options.workers}×${options.concurrency} in flight`;
  const figures: [string, string, Row["better"], (r: NonNullable<typeof ours>) => number][] = [
    ["p50 latency, 1 in flight", "µs", "lower", (r) => r.latency.p50Us],
    ["p99 latency, 1 in flight", "µs", "lower", (r) => r.latency.p99Us],
    ["p99.9 latency, 1 in flight", "µs", "lower", (r) => r.latency.p999Us],
    [`calls/s, ${inFlight}`, "calls/s", "higher", (r) => r.throughput.callsPerSecond],
    [`p99 latency, ${inFlight}`, "µs", "lower", (r) => r.throughput.p99Us],
  ];
  const rows: Row[] = [];
  for (const [figure, unit, better, value] of figures) {
    for (const [name, result] of results) {
      if (name === "ours") continue;
      rows.push({
        scenario: "check",
        figure,
        unit,
        better,
        ours: value(ours),
        baseline: name,
        baselineValue: result === undefined ? undefined : value(result),
      });
    }
  }
  return rows;
}
