/**
 * restart: stop the service, add many more segments to its store (1,000 segments / 50M members
 * at full size), start it again; time from spawn to serving, and members restored per second.
 * The baseline is reading every membership row out of Postgres with COPY, what a service that
 * caches a Postgres table must do at start. Redis runs without persistence here, so it has no
 * restart to compare.
 */
import type { BenchContext } from "../lib/context.js";
import type { Row } from "../lib/report.js";
import { seedSegments } from "../lib/seed.js";
import { spawnService } from "../lib/service-process.js";

/** Restarts the service and reports how long recovery took. */
export async function restart(ctx: BenchContext, log: (line: string) => void): Promise<Row[]> {
  const before = (await ctx.service.metrics()).get("segments_members") ?? 0;
  await ctx.service.stop();
  const { restartSegments, restartMembers, seed } = ctx.options;
  log(
    `restart: seeding ${restartSegments.toLocaleString("en-US")} more segments, ${restartMembers.toLocaleString("en-US")} members in all`,
  );
  const seeded = restartSegments === 0 ? 0 : await seedSegments(ctx.serviceEnv, restartSegments, restartMembers, seed);
  ctx.service = await spawnService(ctx.serviceEnv);
  for (const line of ctx.service.logs.filter((entry) => String(entry.msg).startsWith("loading state")))
    log(`  ${line.msg}: ${line.done}${line.total === undefined ? "" : ` of ${line.total}`} after ${line.ms} ms`);
  const metrics = await ctx.service.metrics();
  const members = metrics.get("segments_members") ?? 0;
  if (members !== before + seeded) throw new Error(`after restart the service holds ${members} members, expected ${before + seeded}`);
  const segments = [...metrics].filter(([name]) => name.startsWith("segments_segments{")).reduce((sum, [, n]) => sum + n, 0);
  const readyS = ctx.service.readyMs / 1000;
  const scan = await ctx.postgres?.scanAll();
  const baseline = "Postgres: COPY every membership row out";
  const figure = (what: string) => `${what} (${segments.toLocaleString("en-US")} segments, ${members.toLocaleString("en-US")} members)`;
  return [
    {
      scenario: "restart",
      figure: figure("time to serving"),
      unit: "s",
      better: "lower",
      ours: readyS,
      baseline,
      baselineValue: scan === undefined ? undefined : scan.ms / 1000,
    },
    {
      scenario: "restart",
      figure: figure("members restored per second"),
      unit: "members/s",
      better: "higher",
      ours: members / readyS,
      baseline,
      baselineValue: scan === undefined ? undefined : scan.rows / (scan.ms / 1000),
    },
  ];
}
