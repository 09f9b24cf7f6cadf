/**
 * CheckMembership on the dense segment under two configurations of the service, each in a
 * process of its own on the same store and data. Some settings (authentication) cannot be turned
 * off in a running process, so each arm needs its own; both run at once and the load alternates
 * between them in short windows (A B, B A, A B, …), and each figure is compared within a pair of
 * neighbouring windows. On this shared two-core machine a run's throughput moves by ±30% with
 * whatever else runs; two windows a few seconds apart see nearly the same machine, where two
 * restarts a minute apart do not. Reported: the median of the paired ratios (calls/s, server CPU
 * per call, p99; and at one call in flight p50 and CPU), with each arm's median beside it.
 */
import type { BenchContext } from "./context.js";
import { type LoadResult, type LoadShape, runLoad } from "./load.js";
import type { Target } from "./load-worker.js";
import { pairedRatios, pairedValues } from "./paired.js";
import type { Row } from "./report.js";
import { type ServiceProcess, spawnService } from "./service-process.js";

/** One configuration: extra environment, and what to do once the process serves (e.g. make a token). */
export interface Arm {
  name: string;
  env: Record<string, string>;
  /** Returns extra target settings for the load (e.g. the token), and a clean-up run before the process stops. */
  prepare?: (service: ServiceProcess) => Promise<{ target?: Partial<Extract<Target, { kind: "grpc-check" }>>; done?: () => Promise<void> }>;
}

interface Running {
  service: ServiceProcess;
  target: Target;
  done: (() => Promise<void>) | undefined;
}

type Key = "baseline" | "variant";

/** Each arm's results, window by window; a pair is the windows with the same index. */
type Windows = Record<Key, LoadResult[]>;

/**
 * Runs `rounds` × (start both arms, then `pairs` alternating pairs of windows) and returns the
 * variant's figures against the baseline's. The baseline starts first, so a variant that creates
 * state (a token) does so after the baseline has read the store.
 */
export async function compareArms(
  ctx: BenchContext,
  log: (line: string) => void,
  scenario: string,
  arms: { baseline: Arm; variant: Arm },
  rounds: number,
  pairs: number,
): Promise<Row[]> {
  const dense = ctx.segments.find((s) => s.spec.key === "dense");
  if (dense === undefined) throw new Error("the dense segment was not loaded");
  const busy: Omit<LoadShape, "serverPid"> = {
    durationMs: ctx.options.durationMs,
    users: ctx.options.users,
    seed: ctx.options.seed,
    workers: ctx.options.workers,
    concurrency: ctx.options.concurrency,
  };
  // One call in flight as well: on two cores the load workers share the CPU with the service, so
  // at saturation a cost on the client's side (sending a header) moves the service's figures too.
  const single = { ...busy, workers: 1, concurrency: 1 };
  const windows: Windows = { baseline: [], variant: [] };
  const singles: Windows = { baseline: [], variant: [] };
  await ctx.service.stop();
  for (let round = 0; round < rounds; round++) {
    const running: Partial<Record<Key, Running>> = {};
    try {
      running.baseline = await start(ctx, arms.baseline, dense.id);
      running.variant = await start(ctx, arms.variant, dense.id);
      const both = running as Record<Key, Running>;
      for (const key of ["baseline", "variant"] as const)
        await runLoad(both[key].target, { ...busy, durationMs: Math.min(2_000, busy.durationMs) });
      for (let pair = 0; pair < pairs; pair++) {
        // Alternate which arm goes first, so a drift within a pair favours neither.
        const order: Key[] = pair % 2 === 0 ? ["baseline", "variant"] : ["variant", "baseline"];
        for (const key of order) windows[key].push(await measure(both[key], busy, log, `${scenario} ${arms[key].name}`));
        for (const key of order) singles[key].push(await measure(both[key], single, log, `${scenario} ${arms[key].name}, 1 in flight`));
        const [b, v] = [windows.baseline.at(-1), windows.variant.at(-1)];
        log(
          `${scenario} round ${round + 1} pair ${pair + 1}: calls/s ${arms.baseline.name} ${Math.round(b?.callsPerSecond ?? 0)}, ${arms.variant.name} ${Math.round(v?.callsPerSecond ?? 0)}; server CPU µs per call ${b?.serverCpuUsPerCall?.toFixed(1)} vs ${v?.serverCpuUsPerCall?.toFixed(1)}`,
        );
      }
    } finally {
      // Stopped even when a round fails, so no arm's process outlives the bench.
      for (const arm of [running.baseline, running.variant]) {
        await arm?.done?.();
        await arm?.service.stop();
      }
    }
  }
  ctx.service = await spawnService(ctx.serviceEnv);
  return report(ctx, log, scenario, arms, { windows, singles, measured: rounds * pairs });
}

/** The rows of a finished comparison, each figure's paired ratios logged beside it. */
function report(
  ctx: BenchContext,
  log: (line: string) => void,
  scenario: string,
  arms: { baseline: Arm; variant: Arm },
  { windows, singles, measured }: { windows: Windows; singles: Windows; measured: number },
): Row[] {
  const inFlight = `${ctx.options.workers}×${ctx.options.concurrency} in flight`;
  const n = `${measured} paired windows`;
  const figures: Figure[] = [
    [`CheckMembership calls/s, ${inFlight} (median of ${n})`, "calls/s", "higher", (r) => r.callsPerSecond],
    [`CheckMembership server CPU per call, ${inFlight}`, "µs", "lower", (r) => r.serverCpuUsPerCall],
    [`CheckMembership p99 latency, ${inFlight}`, "µs", "lower", (r) => r.p99Us],
  ];
  const oneInFlight: Figure[] = [
    ["CheckMembership p50 latency, 1 in flight", "µs", "lower", (r) => r.p50Us],
    ["CheckMembership server CPU per call, 1 in flight", "µs", "lower", (r) => r.serverCpuUsPerCall],
  ];
  const rows: Row[] = [];
  for (const [list, from] of [
    [figures, windows],
    [oneInFlight, singles],
  ] as const) {
    for (const figure of list) {
      const paired = pairedRatios(from.variant.map(figure[3]), from.baseline.map(figure[3]));
      log(`${scenario}: ${figure[0]}: ${arms.variant.name} ÷ ${arms.baseline.name} per pair ${paired.map((r) => r.toFixed(3)).join(", ")}`);
      rows.push(row(scenario, arms.baseline.name, figure, from));
    }
  }
  return rows;
}

type Figure = [figure: string, unit: string, better: Row["better"], value: (r: LoadResult) => number | undefined];

/** Starts one arm's process and prepares it. */
async function start(ctx: BenchContext, arm: Arm, segmentId: string): Promise<Running> {
  const service = await spawnService({ ...ctx.serviceEnv, ...arm.env });
  const prepared = (await arm.prepare?.(service)) ?? {};
  return { service, target: { kind: "grpc-check", address: service.address, segmentId, ...prepared.target }, done: prepared.done };
}

/** One window on one arm; failed calls are logged (calls/s counts only the answered ones). */
async function measure(arm: Running, shape: Omit<LoadShape, "serverPid">, log: (line: string) => void, what: string): Promise<LoadResult> {
  const result = await runLoad(arm.target, { ...shape, serverPid: arm.service.child.pid });
  if (Object.keys(result.errors).length > 0) log(`  ${what}: errors by code ${JSON.stringify(result.errors)}`);
  return result;
}

/** A figure as a row whose ratio column is the median of the paired ratios. */
function row(scenario: string, baseline: string, [figure, unit, better, value]: Figure, from: Windows): Row {
  return { scenario, figure, unit, better, baseline, ...pairedValues(from.variant.map(value), from.baseline.map(value)) };
}
