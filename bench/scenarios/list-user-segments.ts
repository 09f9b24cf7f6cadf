/**
 * list-user-segments: "which segments is this user in?" with many segments. --list-segments extra
 * ACTIVE STATIC segments (10,000; 1,000 at --quick) of a few random dataset users each are
 * created, activated and filled through the API, a few at a time; then ListUserSegments of random
 * dataset users at one call in flight (a load process, as in `check`), against CheckMembership of
 * one segment, the gRPC floor, and Postgres `SELECT segment_id … WHERE uid = $1` on a secondary
 * index on uid made for the purpose (the same extra segments are COPYed into its table first).
 */
import { createClient } from "../../src/client/client.js";
import { SegmentType } from "../../src/gen/segments/v1/segment_pb.js";
import { SegmentService } from "../../src/gen/segments/v1/segment_service_pb.js";
import type { BenchContext } from "../lib/context.js";
import { rng, userId } from "../lib/dataset.js";
import { type LoadResult, runLoad } from "../lib/load.js";
import type { Target } from "../lib/load-worker.js";
import type { Row } from "../lib/report.js";

const MEMBERS = 5;
/** Segments being created at once. */
const PARALLEL = 8;
/** The Postgres baseline's segment_id of extra segment i is FIRST_NUMBER + i. */
const FIRST_NUMBER = 1_000;

/** Runs the list-user-segments scenario. */
export async function listUserSegments(ctx: BenchContext, log: (line: string) => void): Promise<Row[]> {
  const { options } = ctx;
  const dense = ctx.segments.find((s) => s.spec.key === "dense");
  if (dense === undefined) throw new Error("the dense segment was not loaded");
  const count = options.listSegments;
  log(`list-user-segments: creating ${count.toLocaleString("en-US")} ACTIVE segments of ${MEMBERS} random users each`);
  const members = memberLists(options.seed, options.users, count);
  const createMs = await createSegments(ctx, members);
  log(
    `  ${Math.round(count / (createMs / 1000)).toLocaleString("en-US")} segments/s (create + activate + AddMembers, ${PARALLEL} at once)`,
  );
  const { postgres } = ctx;
  if (postgres !== undefined) {
    await postgres.loadSegments(FIRST_NUMBER, members);
    log(`  Postgres: index on uid built in ${Math.round(await postgres.indexUid())} ms`);
  }
  const targets: [string, Target | undefined][] = [
    ["ours", { kind: "grpc-list-user-segments", address: ctx.service.address }],
    ["CheckMembership, one segment (dense)", { kind: "grpc-check", address: ctx.service.address, segmentId: dense.id }],
    ["gRPC floor (no-op health check)", { kind: "grpc-noop", address: ctx.service.address }],
    ["Postgres segment_id by uid (secondary index)", postgres && { kind: "pg-user-segments", url: postgres.url, table: postgres.table }],
  ];
  const shape = { durationMs: options.durationMs, users: options.users, seed: options.seed, workers: 1, concurrency: 1 };
  const results = new Map<string, LoadResult | undefined>();
  for (const [name, target] of targets) {
    if (target === undefined) {
      results.set(name, undefined);
      continue;
    }
    log(`list-user-segments: ${name}`);
    const result = await runLoad(target, shape);
    if (Object.keys(result.errors).length > 0) log(`  ${name}: errors by code ${JSON.stringify(result.errors)}`);
    results.set(name, result);
  }
  return rows(results, count);
}

function rows(results: Map<string, LoadResult | undefined>, count: number): Row[] {
  const ours = results.get("ours");
  if (ours === undefined) throw new Error("our own ListUserSegments did not run");
  const segments = `${count.toLocaleString("en-US")} extra segments`;
  const out: Row[] = [];
  for (const [figure, value] of [
    [`ListUserSegments p50, 1 in flight, ${segments}`, (r: LoadResult) => r.p50Us],
    [`ListUserSegments p99, 1 in flight, ${segments}`, (r: LoadResult) => r.p99Us],
    [`ListUserSegments p99.9, 1 in flight, ${segments}`, (r: LoadResult) => r.p999Us],
  ] as const) {
    for (const [baseline, result] of results) {
      if (baseline === "ours") continue;
      const baselineValue = result === undefined ? undefined : value(result);
      out.push({ scenario: "list-user-segments", figure, unit: "µs", better: "lower", ours: value(ours), baseline, baselineValue });
    }
  }
  return out;
}

/** MEMBERS distinct random dataset users for each of `count` segments, ascending. */
function memberLists(seed: number, users: number, count: number): number[][] {
  const next = rng(seed + 11);
  return Array.from({ length: count }, () => {
    const picked = new Set<number>();
    while (picked.size < Math.min(MEMBERS, users)) picked.add(Math.floor(next() * users));
    return [...picked].sort((a, b) => a - b);
  });
}

/** Creates, activates and fills one segment per member list, PARALLEL at a time; returns elapsed ms. */
async function createSegments(ctx: BenchContext, members: number[][]): Promise<number> {
  const client = createClient(SegmentService, ctx.service.address);
  const started = performance.now();
  let nextIndex = 0;
  const worker = async () => {
    for (let i = nextIndex++; i < members.length; i = nextIndex++) {
      const { segment } = await client.createSegment({ name: `bench list-user-segments ${i}`, type: SegmentType.STATIC });
      const segmentId = segment?.id ?? "";
      await client.activateSegment({ segmentId });
      await client.addMembers({ segmentId, userIds: (members[i] as number[]).map((n) => userId(ctx.options.seed, n)) });
    }
  };
  try {
    await Promise.all(Array.from({ length: PARALLEL }, worker));
  } finally {
    client.close();
  }
  return performance.now() - started;
}
