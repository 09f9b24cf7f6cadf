/**
 * One load-generating process: runs `concurrency` closed loops against one target for a fixed
 * time, recording each call's latency (µs) in an HDR histogram, and reports to its parent.
 * Started by load.ts with fork(); the target and sizes come as the first IPC message. Once
 * connected it says "ready" and waits for "go", so every worker of a run starts its clock
 * together and the parent knows when the measured window opens and closes.
 */

import { encodeIntoCompressedBase64 } from "hdr-histogram-js";
import { Redis } from "ioredis";
import pg from "pg";
import { createClient } from "../../src/client/client.js";
import { Health } from "../../src/gen/grpc/health/v1/health_pb.js";
import { MembershipService } from "../../src/gen/segments/v1/membership_service_pb.js";
import { rng, userId } from "./dataset.js";
import { encodeBatchCheck, rawClient, sendBatchCheck } from "./encoded.js";
import { latencyHistogram, MAX_US } from "./histogram.js";
import { encodeCommand, RawRedis } from "./raw-redis.js";

/** What a worker calls. Batch kinds ask about `batch` random users per call. */
export type Target =
  | { kind: "grpc-check"; address: string; segmentId: string; token?: string }
  | { kind: "grpc-noop"; address: string }
  | { kind: "grpc-list-user-segments"; address: string }
  | { kind: "redis-sismember"; url: string; key: string }
  | { kind: "pg-point"; url: string; table: string; segmentId: number }
  | { kind: "pg-user-segments"; url: string; table: string }
  | { kind: "grpc-batch-check"; address: string; segmentId: string; batch: number }
  | { kind: "redis-smismember"; url: string; key: string; batch: number }
  | { kind: "pg-batch"; url: string; table: string; segmentId: number; batch: number };

/**
 * Random users drawn per worker before the clock starts (fewer for a tiny dataset, but at least
 * two batches): a batch call takes a slice at a random offset, so the load process spends its
 * time calling, not making ids.
 */
const POOL_USERS = 200_000;

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

type Call = () => Promise<unknown>;

/** The worker's seeded RNG: uniform in [0, 1). */
type Random = () => number;

async function connect(job: WorkerJob, random: Random): Promise<{ call: Call; close(): Promise<void> }> {
  const { target, seed } = job;
  const user = () => Math.floor(random() * job.users);
  switch (target.kind) {
    case "grpc-check": {
      const client = createClient(MembershipService, target.address);
      const segmentIds = [target.segmentId];
      const options = target.token === undefined ? undefined : { metadata: { authorization: `Bearer ${target.token}` } };
      return {
        call: () => client.checkMembership({ userId: userId(seed, user()), segmentIds }, options),
        close: async () => client.close(),
      };
    }
    case "grpc-noop": {
      const client = createClient(Health, target.address);
      return { call: () => client.check({ service: "" }), close: async () => client.close() };
    }
    case "grpc-list-user-segments": {
      const client = createClient(MembershipService, target.address);
      return { call: () => client.listUserSegments({ userId: userId(seed, user()) }), close: async () => client.close() };
    }
    case "redis-sismember": {
      const redis = await redisClient(target.url);
      return { call: () => redis.sismember(target.key, userId(seed, user())), close: async () => void redis.disconnect() };
    }
    case "pg-point": {
      const pool = new pg.Pool({ connectionString: target.url, max: job.concurrency });
      const text = `SELECT EXISTS (SELECT 1 FROM ${target.table} WHERE segment_id = $1 AND uid = $2) AS member`;
      return { call: () => pool.query(text, [target.segmentId, user()]), close: () => pool.end() };
    }
    case "pg-user-segments": {
      const pool = new pg.Pool({ connectionString: target.url, max: job.concurrency });
      const text = `SELECT segment_id FROM ${target.table} WHERE uid = $1`;
      return { call: () => pool.query(text, [user()]), close: () => pool.end() };
    }
    default:
      return connectBatch(job, target, random);
  }
}

type BatchTarget = Extract<Target, { batch: number }>;

/**
 * Requests encoded per worker before the clock starts, sent in turn: enough distinct ones that the
 * server sees a spread of users (each a slice of the pool at a random offset), few enough to keep.
 */
const ENCODED_REQUESTS = 128;

/**
 * Batch targets: each call asks about `batch` consecutive users of a pool drawn in advance. Ours
 * and Redis's calls go as request bytes encoded in advance, and their answers are not decoded
 * (as redis-benchmark does): encoding 10,000 ids per call in the load processes took ~30% of
 * their time, on the two cores the servers under test also run on.
 */
async function connectBatch(job: WorkerJob, target: BatchTarget, random: Random): Promise<{ call: Call; close(): Promise<void> }> {
  const size = Math.max(2 * target.batch, Math.min(POOL_USERS, 10 * job.users));
  const numbers = Array.from({ length: size }, () => Math.floor(random() * job.users));
  const slice = <T>(pool: T[]) => {
    const from = Math.floor(random() * (pool.length - target.batch + 1));
    return pool.slice(from, from + target.batch);
  };
  const encoded = <T>(encode: (ids: string[]) => T) => {
    const ids = numbers.map((n) => userId(job.seed, n));
    const requests = Array.from({ length: ENCODED_REQUESTS }, () => encode(slice(ids)));
    let next = 0;
    return () => requests[next++ % requests.length] as T;
  };
  switch (target.kind) {
    case "grpc-batch-check": {
      const client = rawClient(target.address);
      const request = encoded((ids) => encodeBatchCheck(target.segmentId, ids));
      return { call: () => sendBatchCheck(client, request()), close: async () => client.close() };
    }
    case "redis-smismember": {
      const redis = await RawRedis.open(target.url);
      const command = encoded((ids) => encodeCommand(["SMISMEMBER", target.key, ...ids]));
      return { call: () => redis.send(command()), close: async () => redis.close() };
    }
    case "pg-batch": {
      const pool = new pg.Pool({ connectionString: target.url, max: job.concurrency });
      const text = `SELECT uid FROM ${target.table} WHERE segment_id = $1 AND uid = ANY($2::int[])`;
      return { call: () => pool.query(text, [target.segmentId, slice(numbers)]), close: () => pool.end() };
    }
  }
}

async function redisClient(url: string): Promise<Redis> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0 });
  await redis.connect();
  return redis;
}

async function run(job: WorkerJob): Promise<WorkerReport> {
  const pick = rng(job.seed ^ process.pid);
  const { call, close } = await connect(job, pick);
  // One call before the clock starts, so connecting is never inside a short run's measured window
  // (its failure, if any, shows up again in the measured calls).
  await call().catch(() => undefined);
  await new Promise<void>((resolve) => {
    process.once("message", () => resolve());
    process.send?.("ready");
  });
  const histogram = latencyHistogram();
  const errors: Record<string, number> = {};
  const measureFrom = performance.now() + job.warmupMs;
  const end = measureFrom + job.durationMs;
  let calls = 0;
  const loop = async () => {
    for (;;) {
      const started = performance.now();
      if (started >= end) return;
      try {
        await call();
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
