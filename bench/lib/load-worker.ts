/**
 * One load-generating process: runs `concurrency` closed loops against one target for a fixed
 * time, recording each call's latency (µs) in an HDR histogram, and reports to its parent.
 * Started by load.ts with fork(); the target and sizes come as the first IPC message.
 */

import { encodeIntoCompressedBase64 } from "hdr-histogram-js";
import { Redis } from "ioredis";
import pg from "pg";
import { createClient } from "../../src/client/client.js";
import { Health } from "../../src/gen/grpc/health/v1/health_pb.js";
import { MembershipService } from "../../src/gen/segments/v1/membership_service_pb.js";
import { rng, userId } from "./dataset.js";
import { latencyHistogram, MAX_US } from "./histogram.js";

/** What a worker calls. */
export type Target =
  | { kind: "grpc-check"; address: string; segmentId: string }
  | { kind: "grpc-noop"; address: string }
  | { kind: "redis-sismember"; url: string; key: string }
  | { kind: "pg-point"; url: string; table: string; segmentId: number };

/** The first message a worker receives. */
export interface WorkerJob {
  target: Target;
  concurrency: number;
  warmupMs: number;
  durationMs: number;
  users: number;
  seed: number;
}

/** What a worker reports back. */
export interface WorkerReport {
  calls: number;
  errors: Record<string, number>;
  histogram: string;
  elapsedMs: number;
}

type Call = (n: number) => Promise<unknown>;

async function connect(target: Target, seed: number, concurrency: number): Promise<{ call: Call; close(): Promise<void> }> {
  switch (target.kind) {
    case "grpc-check": {
      const client = createClient(MembershipService, target.address);
      const segmentIds = [target.segmentId];
      return { call: (n) => client.checkMembership({ userId: userId(seed, n), segmentIds }), close: async () => client.close() };
    }
    case "grpc-noop": {
      const client = createClient(Health, target.address);
      return { call: () => client.check({ service: "" }), close: async () => client.close() };
    }
    case "redis-sismember": {
      const redis = new Redis(target.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
      await redis.connect();
      return { call: (n) => redis.sismember(target.key, userId(seed, n)), close: async () => void redis.disconnect() };
    }
    case "pg-point": {
      const pool = new pg.Pool({ connectionString: target.url, max: concurrency });
      const text = `SELECT EXISTS (SELECT 1 FROM ${target.table} WHERE segment_id = $1 AND uid = $2) AS member`;
      return { call: (n) => pool.query(text, [target.segmentId, n]), close: () => pool.end() };
    }
  }
}

async function run(job: WorkerJob): Promise<WorkerReport> {
  const { call, close } = await connect(job.target, job.seed, job.concurrency);
  const histogram = latencyHistogram();
  const errors: Record<string, number> = {};
  const pick = rng(job.seed ^ process.pid);
  const measureFrom = performance.now() + job.warmupMs;
  const end = measureFrom + job.durationMs;
  let calls = 0;
  const loop = async () => {
    for (;;) {
      const started = performance.now();
      if (started >= end) return;
      try {
        await call(Math.floor(pick() * job.users));
        if (started >= measureFrom) {
          histogram.recordValue(Math.min(MAX_US, Math.max(1, Math.round((performance.now() - started) * 1000))));
          calls++;
        }
      } catch (error: unknown) {
        const code = String((error as { code?: unknown }).code ?? "unknown");
        errors[code] = (errors[code] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: job.concurrency }, loop));
  await close();
  return { calls, errors, histogram: encodeIntoCompressedBase64(histogram), elapsedMs: job.durationMs };
}

process.once("message", (job: WorkerJob) => {
  run(job).then(
    (report) => process.send?.(report, () => process.exit(0)),
    (error: unknown) => {
      process.stderr.write(`load worker failed: ${String(error)}\n`);
      process.exit(1);
    },
  );
});
