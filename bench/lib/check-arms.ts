/**
 * CheckMembership on the dense segment under two configurations of the service, each in a
 * process of its own on the same store and data: restarted for every run (A, B, A, B, …), since
 * some settings (authentication) cannot be turned off in a running process. Reports calls/s with
 * every worker busy, the server's CPU per call and p99, as medians over the rounds. The service
 * is left running with its usual environment.
 */
import type { BenchContext } from "./context.js";
import { type LoadResult, runLoad } from "./load.js";
import type { Target } from "./load-worker.js";
import type { Row } from "./report.js";
import { type ServiceProcess, spawnService } from "./service-process.js";

/** One configuration: extra environment, and what to do once the process serves (e.g. make a token). */
export interface Arm {
  name: string;
  env: Record<string, string>;
  /** Returns extra target settings for the load (e.g. the token), and a clean-up run before the process stops. */
  prepare?: (service: ServiceProcess) => Promise<{ target?: Partial<Extract<Target, { kind: "grpc-check" }>>; done?: () => Promise<void> }>;
}

/** Runs `rounds` × (baseline, variant) and returns the variant's figures against the baseline's. */
export async function compareArms(
  ctx: BenchContext,
  log: (line: string) => void,
  scenario: string,
  arms: { baseline: Arm; variant: Arm },
  rounds: number,
): Promise<Row[]> {
  const dense = ctx.segments.find((s) => s.spec.key === "dense");
  if (dense === undefined) throw new Error("the dense segment was not loaded");
  const load = {
    durationMs: ctx.options.durationMs,
    users: ctx.options.users,
    seed: ctx.options.seed,
    workers: ctx.options.workers,
    concurrency: ctx.options.concurrency,
  };
  const results = { baseline: [] as LoadResult[], variant: [] as LoadResult[] };
  // One call in flight as well: on two cores the load workers share the CPU with the service, so
  // at saturation a cost on the client's side (sending a header) moves the service's figures too.
  const single = { baseline: [] as LoadResult[], variant: [] as LoadResult[] };
  for (let round = 0; round < rounds; round++) {
    for (const key of ["baseline", "variant"] as const) {
      const arm = arms[key];
      await ctx.service.stop();
      ctx.service = await spawnService({ ...ctx.serviceEnv, ...arm.env });
      const prepared = (await arm.prepare?.(ctx.service)) ?? {};
      const target: Target = { kind: "grpc-check", address: ctx.service.address, segmentId: dense.id, ...prepared.target };
      await runLoad(target, { ...load, durationMs: Math.min(2_000, load.durationMs) });
      const result = await runLoad(target, { ...load, serverPid: ctx.service.child.pid });
      single[key].push(await runLoad(target, { ...load, workers: 1, concurrency: 1, serverPid: ctx.service.child.pid }));
      if (Object.keys(result.errors).length > 0) log(`  ${scenario} ${arm.name}: errors by code ${JSON.stringify(result.errors)}`);
      log(
        `${scenario} ${arm.name}: ${Math.round(result.callsPerSecond)} calls/s, server CPU ${result.serverCpuUsPerCall?.toFixed(1)} µs per call`,
      );
      results[key].push(result);
      await prepared.done?.();
    }
  }
  await ctx.service.stop();
  ctx.service = await spawnService(ctx.serviceEnv);
  const inFlight = `${ctx.options.workers}×${ctx.options.concurrency} in flight`;
  const figures: [string, string, Row["better"], (r: LoadResult) => number | undefined][] = [
    [`CheckMembership calls/s, ${inFlight} (median of ${rounds} restarts)`, "calls/s", "higher", (r) => r.callsPerSecond],
    [`CheckMembership server CPU per call, ${inFlight}`, "µs", "lower", (r) => r.serverCpuUsPerCall],
    [`CheckMembership p99 latency, ${inFlight}`, "µs", "lower", (r) => r.p99Us],
  ];
  const oneInFlight: typeof figures = [
    ["CheckMembership p50 latency, 1 in flight", "µs", "lower", (r) => r.p50Us],
    ["CheckMembership server CPU per call, 1 in flight", "µs", "lower", (r) => r.serverCpuUsPerCall],
  ];
  const rows = (list: typeof figures, from: typeof results) =>
    list.map(([figure, unit, better, value]) => ({
      scenario,
      figure,
      unit,
      better,
      ours: median(from.variant.map(value)),
      baseline: arms.baseline.name,
      baselineValue: median(from.baseline.map(value)),
    }));
  return [...rows(figures, results), ...rows(oneInFlight, single)];
}

function median(values: (number | undefined)[]): number {
  const sorted = values.filter((v): v is number => v !== undefined).sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}
