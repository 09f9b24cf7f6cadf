/**
 * metrics-cost: what counting calls for /metrics costs the hot path. CheckMembership with the
 * grpc_server_* counting on (the default) vs METRICS_ENABLED=false, on the same store and data
 * (bench/lib/check-arms.ts).
 */
import { compareArms } from "../lib/check-arms.js";
import type { BenchContext } from "../lib/context.js";
import type { Row } from "../lib/report.js";

/** Runs the metrics-cost scenario. */
export async function metricsCostScenario(ctx: BenchContext, log: (line: string) => void): Promise<Row[]> {
  return compareArms(
    ctx,
    log,
    "metrics-cost",
    {
      baseline: { name: "call counting off (METRICS_ENABLED=false)", env: { METRICS_ENABLED: "false" } },
      variant: { name: "on", env: {} },
    },
    ctx.options.armRounds,
    ctx.options.armPairs,
  );
}
