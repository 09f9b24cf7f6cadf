/**
 * check: unary CheckMembership on the dense segment, against the transport floor (a no-op
 * health check on our server), a bare grpc-js server with a no-op handler (floor-bare), Redis
 * SISMEMBER and a Postgres primary-key lookup. Latency at one call in flight; throughput, and
 * the gRPC servers' CPU time per call, with every worker's loops busy.
 */
import { startBareServer } from "../lib/bare-grpc-server.js";
import type { BenchContext } from "../lib/context.js";
import { type LoadResult, runLoad } from "../lib/load.js";
import type { Target } from "../lib/load-worker.js";
import { pairedRatios, pairedValues } from "../lib/paired.js";
import type { Row } from "../lib/report.js";

/** Runs the check scenario. */
export async function check(ctx: BenchContext, log: (line: string) => void): Promise<Row[]> {
  const dense = ctx.segments.find((s) => s.spec.key === "dense");
  if (dense === undefined) throw new Error("the dense segment was not loaded");
  const bare = await startBareServer();
  try {
    return await measure(ctx, dense.id, dense.number, bare, log);
  } finally {
    await bare.stop();
  }
}

/** Throughput runs per gRPC server for its CPU per call. */
const CPU_ROUNDS = 5;

/** The baseline name of the bare grpc-js server. */
export const FLOOR_BARE = "floor-bare: bare grpc-js, no-op handler";

async function measure(
  ctx: BenchContext,
  denseId: string,
  denseNumber: number,
  bare: { address: string; pid: number },
  log: (line: string) => void,
): Promise<Row[]> {
  const { options } = ctx;
  const servicePid = ctx.service.child.pid;
  // [name, target, pid of the server whose CPU the throughput run measures]
  const targets: [string, Target | string, number | undefined][] = [
    ["ours", { kind: "grpc-check", address: ctx.service.address, segmentId: denseId }, servicePid],
    ["gRPC floor (no-op health check)", { kind: "grpc-noop", address: ctx.service.address }, servicePid],
    // The same client and call as the health-check floor, so only the server differs.
    [FLOOR_BARE, { kind: "grpc-noop", address: bare.address }, bare.pid],
    [
      "Redis SISMEMBER",
      ctx.redis === undefined ? "skipped" : { kind: "redis-sismember", url: ctx.redis.url, key: ctx.redis.key("dense") },
      undefined,
    ],
    [
      "Postgres PK lookup",
      ctx.postgres === undefined
        ? "skipped"
        : { kind: "pg-point", url: ctx.postgres.url, table: ctx.postgres.table, segmentId: denseNumber },
      undefined,
    ],
  ];
  const shape = { durationMs: options.durationMs, users: options.users, seed: options.seed };
  const results = new Map<string, { latency: LoadResult; throughput: LoadResult; cpuUs: (number | undefined)[] } | undefined>();
  for (const [name, target, serverPid] of targets) {
    if (typeof target === "string") {
      results.set(name, undefined);
      continue;
    }
    log(`check: ${name}`);
    const latency = await runLoad(target, { ...shape, workers: 1, concurrency: 1 });
    const throughput = await runLoad(target, { ...shape, workers: options.workers, concurrency: options.concurrency, serverPid });
    for (const [mode, result] of [
      ["latency", latency],
      ["throughput", throughput],
    ] as const) {
      const failed = Object.entries(result.errors);
      if (failed.length > 0) log(`  ${name} ${mode}: errors by code ${JSON.stringify(result.errors)}`);
    }
    results.set(name, { latency, throughput, cpuUs: [] });
  }
  // Server CPU per call moves with the machine's other load from one run to the next, so the
  // gRPC servers are measured in turn, CPU_ROUNDS times (the first above), the order reversed
  // every other round; each figure against ours is the median of the rounds' ratios (paired.ts).
  const cpuTargets = targets.filter(
    ([name, target, pid]) => pid !== undefined && typeof target !== "string" && results.get(name) !== undefined,
  );
  for (let round = 0; round < CPU_ROUNDS; round++) {
    for (const [name, target, serverPid] of round % 2 === 0 ? cpuTargets : [...cpuTargets].reverse()) {
      const result = results.get(name);
      if (typeof target === "string" || result === undefined) continue;
      const again =
        round === 0
          ? result.throughput
          : await runLoad(target, { ...shape, workers: options.workers, concurrency: options.concurrency, serverPid });
      result.cpuUs.push(again.serverCpuUsPerCall);
      log(`check: ${name} server CPU ${again.serverCpuUsPerCall?.toFixed(1)} µs per call at ${Math.round(again.callsPerSecond)} calls/s`);
    }
  }
  const ours = results.get("ours");
  if (ours === undefined) throw new Error("our own check did not run");
  const inFlight = `${options.workers}×${options.concurrency} in flight`;
  const figures: [string, string, Row["better"], (r: NonNullable<typeof ours>) => number | undefined][] = [
    ["p50 latency, 1 in flight", "µs", "lower", (r) => r.latency.p50Us],
    ["p99 latency, 1 in flight", "µs", "lower", (r) => r.latency.p99Us],
    ["p99.9 latency, 1 in flight", "µs", "lower", (r) => r.latency.p999Us],
    [`calls/s, ${inFlight}`, "calls/s", "higher", (r) => r.throughput.callsPerSecond],
    [`p99 latency, ${inFlight}`, "µs", "lower", (r) => r.throughput.p99Us],
  ];
  const rows: Row[] = [];
  for (const [figure, unit, better, value] of figures) {
    const own = value(ours);
    if (own === undefined) continue;
    for (const [name, result] of results) {
      if (name === "ours") continue;
      rows.push({
        scenario: "check",
        figure,
        unit,
        better,
        ours: own,
        baseline: name,
        baselineValue: result === undefined ? undefined : value(result),
      });
    }
  }
  // Only the gRPC servers are measured: the figure is what our server adds to grpc-js per call.
  for (const [name] of cpuTargets) {
    const result = results.get(name);
    if (name === "ours" || result === undefined) continue;
    log(
      `check: server CPU per call, ours ÷ ${name} per round ${pairedRatios(ours.cpuUs, result.cpuUs)
        .map((r) => r.toFixed(3))
        .join(", ")}`,
    );
    rows.push({
      scenario: "check",
      figure: `server CPU per call, ${inFlight} (median of ${CPU_ROUNDS} rounds' ratios)`,
      unit: "µs",
      better: "lower",
      baseline: name,
      ...pairedValues(ours.cpuUs, result.cpuUs),
    });
  }
  return rows;
}
