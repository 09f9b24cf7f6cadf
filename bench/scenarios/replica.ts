/**
 * replica: the client-side replica (src/client/replica.ts) in this process. `has()` latency on
 * the dense segment for random dataset users (uids resolved beforehand, as a flag evaluator's
 * warm cache would hold them), timed call by call, vs Redis SISMEMBER over loopback at one call
 * in flight on the same users; and change-to-replica latency: from sending AddMembers (10 new
 * ids into the sparse segment) until the replica has applied that version, vs the AddMembers
 * round trip itself (its ack).
 */
import { Redis } from "ioredis";
import { createClient } from "../../src/client/client.js";
import { SegmentReplica } from "../../src/client/replica.js";
import { MembershipService } from "../../src/gen/segments/v1/membership_service_pb.js";
import { SegmentService } from "../../src/gen/segments/v1/segment_service_pb.js";
import type { BenchContext } from "../lib/context.js";
import { rng, userId } from "../lib/dataset.js";
import { latencyHistogramNs } from "../lib/histogram.js";
import type { Row } from "../lib/report.js";

const PROBE_USERS = 100_000;
const HAS_CALLS = 2_000_000;
const CHANGES = 200;

/** Runs the replica scenario. */
export async function replicaScenario(ctx: BenchContext, log: (line: string) => void): Promise<Row[]> {
  const dense = ctx.segments.find((s) => s.spec.key === "dense");
  const sparse = ctx.segments.find((s) => s.spec.key === "sparse");
  if (dense === undefined || sparse === undefined) throw new Error("the dataset segments were not loaded");
  const membership = createClient(MembershipService, ctx.service.address);
  const segments = createClient(SegmentService, ctx.service.address);
  try {
    log("replica: loading the dense and sparse segments");
    const started = performance.now();
    const replica = await SegmentReplica.open(membership, [dense.id, sparse.id]);
    const loadMs = performance.now() - started;
    const pick = rng(ctx.options.seed ^ 0x5eed);
    const probes = Array.from({ length: Math.min(PROBE_USERS, ctx.options.users) }, () =>
      userId(ctx.options.seed, Math.floor(pick() * ctx.options.users)),
    );
    await replica.prepare(probes);
    const has = timeHas(replica, probes, dense.id);
    const redis = ctx.redis === undefined ? undefined : await timeSismember(ctx.options.redisUrl, ctx.redis.key("dense"), probes);
    log(`replica: has() p50 ${has.p50} ns, p99 ${has.p99} ns; loaded in ${Math.round(loadMs)} ms`);
    const change = await timeChanges(replica, segments, sparse.id);
    replica.close();
    const row = (figure: string, unit: string, ours: number, baseline: string, baselineValue: number | undefined): Row => ({
      scenario: "replica",
      figure,
      unit,
      better: "lower",
      ours,
      baseline,
      baselineValue,
    });
    return [
      row("has() p50, in-process, warm uid cache", "ns", has.p50, "Redis SISMEMBER, 1 in flight", redis?.p50),
      row("has() p99, in-process, warm uid cache", "ns", has.p99, "Redis SISMEMBER, 1 in flight", redis?.p99),
      row("change visible in replica, p50 (from sending AddMembers)", "µs", change.p50, "AddMembers round trip (ack)", change.ackP50),
      row("change visible in replica, p99 (from sending AddMembers)", "µs", change.p99, "AddMembers round trip (ack)", change.ackP99),
    ];
  } finally {
    membership.close();
    segments.close();
  }
}

/** has() call by call: per-call time includes one hrtime read (~30–60 ns here). */
function timeHas(replica: SegmentReplica, probes: string[], segmentId: string): { p50: number; p99: number } {
  const histogram = latencyHistogramNs();
  let members = 0;
  for (let i = 0; i < HAS_CALLS; i++) {
    const probe = probes[i % probes.length] as string;
    const start = process.hrtime.bigint();
    const answer = replica.has(probe, segmentId);
    const ns = Number(process.hrtime.bigint() - start);
    if (answer?.member === true) members++;
    if (i >= HAS_CALLS / 10) histogram.recordValue(Math.max(1, ns));
  }
  if (members === 0) throw new Error("the replica found no members of the dense segment");
  return { p50: histogram.getValueAtPercentile(50), p99: histogram.getValueAtPercentile(99) };
}

async function timeSismember(url: string, key: string, probes: string[]): Promise<{ p50: number; p99: number }> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0 });
  await redis.connect();
  const histogram = latencyHistogramNs();
  try {
    const calls = Math.min(20_000, probes.length);
    for (let i = 0; i < calls; i++) {
      const start = process.hrtime.bigint();
      await redis.sismember(key, probes[i] as string);
      if (i >= calls / 10) histogram.recordValue(Math.max(1, Number(process.hrtime.bigint() - start)));
    }
  } finally {
    redis.disconnect();
  }
  return { p50: histogram.getValueAtPercentile(50), p99: histogram.getValueAtPercentile(99) };
}

/** From sending AddMembers to the replica applying its version, one change at a time. */
async function timeChanges(
  replica: SegmentReplica,
  segments: ReturnType<typeof createClient<typeof SegmentService>>,
  segmentId: string,
): Promise<{ p50: number; p99: number; ackP50: number; ackP99: number }> {
  const visible = latencyHistogramNs();
  const acked = latencyHistogramNs();
  const applied = new Map<number, bigint>();
  const unsubscribe = replica.onChange((change) => {
    if (change.segmentId === segmentId) applied.set(change.version, process.hrtime.bigint());
  });
  try {
    for (let k = 0; k < CHANGES; k++) {
      const ids = Array.from({ length: 10 }, (_, i) => `replica_bench_${process.pid}_${k}_${i}`);
      const sent = process.hrtime.bigint();
      const version = Number((await segments.addMembers({ segmentId, userIds: ids })).version);
      acked.recordValue(Number(process.hrtime.bigint() - sent));
      while (!applied.has(version)) await new Promise((resolve) => setImmediate(resolve));
      visible.recordValue(Number((applied.get(version) as bigint) - sent));
    }
  } finally {
    unsubscribe();
  }
  const us = (h: typeof visible, p: number) => h.getValueAtPercentile(p) / 1000;
  return { p50: us(visible, 50), p99: us(visible, 99), ackP50: us(acked, 50), ackP99: us(acked, 99) };
}
