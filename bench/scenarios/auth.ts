/**
 * auth: what authentication costs the hot path. CheckMembership on the dense segment, calls/s
 * with every worker busy and the server's CPU per call, with authentication on (every call carries
 * a reader token: parse, look up by id, SHA-256, constant-time compare, role check) vs off, on the
 * same store and data. The service is restarted for each arm (authentication, once on, stays on
 * in a process): off, on, off, on, and the figure is the median of each arm's runs. The service is
 * left running with authentication off, as the later scenarios expect. Goal: on ≥ 0.95× off.
 */
import { randomBytes } from "node:crypto";
import { createClient } from "../../src/client/client.js";
import { AccessService, Role } from "../../src/gen/segments/v1/access_service_pb.js";
import type { BenchContext } from "../lib/context.js";
import { type LoadResult, runLoad } from "../lib/load.js";
import type { Row } from "../lib/report.js";
import { spawnService } from "../lib/service-process.js";

const ROUNDS = 3;
const BASELINE = "authentication off (no token)";

/** Runs the auth scenario. */
export async function authScenario(ctx: BenchContext, log: (line: string) => void): Promise<Row[]> {
  const dense = ctx.segments.find((s) => s.spec.key === "dense");
  if (dense === undefined) throw new Error("the dense segment was not loaded");
  const shape = { durationMs: ctx.options.durationMs, users: ctx.options.users, seed: ctx.options.seed };
  const load = { ...shape, workers: ctx.options.workers, concurrency: ctx.options.concurrency };
  const arms: Record<"on" | "off", LoadResult[]> = { on: [], off: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const arm of ["off", "on"] as const) {
      const adminToken = randomBytes(32).toString("hex");
      await ctx.service.stop();
      ctx.service = await spawnService(arm === "on" ? { ...ctx.serviceEnv, ADMIN_TOKEN: adminToken } : ctx.serviceEnv);
      const access = createClient(AccessService, ctx.service.address);
      const admin = { metadata: { authorization: `Bearer ${adminToken}` } };
      try {
        // A stored reader token, as a flag evaluator would hold; revoked after, so the next "off" start finds none.
        const reader = arm === "on" ? await access.createApiToken({ name: "bench reader", role: Role.READER }, admin) : undefined;
        const target = { kind: "grpc-check" as const, address: ctx.service.address, segmentId: dense.id, token: reader?.bearerToken };
        await runLoad(target, { ...load, durationMs: Math.min(2_000, shape.durationMs) });
        const result = await runLoad(target, { ...load, serverPid: ctx.service.child.pid });
        if (Object.keys(result.errors).length > 0) log(`  auth ${arm}: errors by code ${JSON.stringify(result.errors)}`);
        log(`auth ${arm}: ${Math.round(result.callsPerSecond)} calls/s, server CPU ${result.serverCpuUsPerCall?.toFixed(1)} µs per call`);
        arms[arm].push(result);
        if (reader?.token !== undefined) await access.revokeApiToken({ id: reader.token.id }, admin);
      } finally {
        access.close();
      }
    }
  }
  await ctx.service.stop();
  ctx.service = await spawnService(ctx.serviceEnv);
  const inFlight = `${ctx.options.workers}×${ctx.options.concurrency} in flight`;
  const figures: [string, string, Row["better"], (r: LoadResult) => number | undefined][] = [
    [`CheckMembership calls/s, ${inFlight} (median of ${ROUNDS} restarts)`, "calls/s", "higher", (r) => r.callsPerSecond],
    [`CheckMembership server CPU per call, ${inFlight}`, "µs", "lower", (r) => r.serverCpuUsPerCall],
    [`CheckMembership p99 latency, ${inFlight}`, "µs", "lower", (r) => r.p99Us],
  ];
  return figures.map(([figure, unit, better, value]) => ({
    scenario: "auth",
    figure,
    unit,
    better,
    ours: median(arms.on.map(value)),
    baseline: BASELINE,
    baselineValue: median(arms.off.map(value)),
  }));
}

function median(values: (number | undefined)[]): number {
  const sorted = values.filter((v): v is number => v !== undefined).sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}
