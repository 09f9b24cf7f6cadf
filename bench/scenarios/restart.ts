/**
 * restart: stop the service and start it again on the same store; time from spawn to serving,
 * and members restored per second. The baseline is reading every membership row out of Postgres
 * with COPY, what a service that caches a Postgres table must do at start. Redis runs without
 * persistence here, so it has no restart to compare.
 */
import type { BenchContext } from "../lib/context.js";
import type { Row } from "../lib/report.js";
import { spawnService } from "../lib/service-process.js";

/** Restarts the service and reports how long recovery took. */
export async function restart(ctx: BenchContext): Promise<Row[]> {
  await ctx.service.stop();
  ctx.service = await spawnService(ctx.serviceEnv);
  const members = ctx.segments.reduce((sum, s) => sum + s.spec.size, 0);
  const restored = (await ctx.service.metrics()).get("segments_members");
  if (restored !== members) throw new Error(`after restart the service holds ${restored} members, expected ${members}`);
  const readyS = ctx.service.readyMs / 1000;
  const scanS = ctx.postgres === undefined ? undefined : (await ctx.postgres.scanAll()) / 1000;
  const baseline = "Postgres: COPY every membership row out";
  return [
    {
      scenario: "restart",
      figure: "time to serving after restart",
      unit: "s",
      better: "lower",
      ours: readyS,
      baseline,
      baselineValue: scanS,
    },
    {
      scenario: "restart",
      figure: "members restored per second",
      unit: "members/s",
      better: "higher",
      ours: members / readyS,
      baseline,
      baselineValue: scanS === undefined ? undefined : members / scanS,
    },
  ];
}
