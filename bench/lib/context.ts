/**
 * Set-up shared by every scenario: the service (a child process on its own store), the
 * baselines, and the same dataset loaded into each, with the load times kept for `bulk`.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { type Client, createClient } from "../../src/client/client.js";
import { SegmentType } from "../../src/gen/segments/v1/segment_pb.js";
import { SegmentService } from "../../src/gen/segments/v1/segment_service_pb.js";
import { PostgresBaseline } from "../baselines/postgres.js";
import { RedisBaseline } from "../baselines/redis.js";
import { type SegmentSpec, segmentSpecs, userId } from "./dataset.js";
import { encodeAdd, rawClient, sendAdd } from "./encoded.js";
import type { BenchOptions } from "./options.js";
import { type ServiceProcess, spawnService } from "./service-process.js";

const ADD_BATCH = 100_000;

/** A dataset segment as loaded everywhere. */
export interface LoadedSegment {
  spec: SegmentSpec;
  /** Our segment id. */
  id: string;
  /** The baseline table's segment_id. */
  number: number;
  /** Milliseconds each system took to load it. */
  /** usersCopy: the dense segment's (uid, external id) rows COPYed into an index-free table. */
  loadMs: { ours: number; redis?: number; postgres?: number; usersCopy?: number };
}

/** Everything a scenario needs. */
export interface BenchContext {
  options: BenchOptions;
  service: ServiceProcess;
  serviceEnv: Record<string, string>;
  store: string;
  segments: LoadedSegment[];
  redis: RedisBaseline | undefined;
  postgres: PostgresBaseline | undefined;
  skipped: string[];
  /** Service RSS and Redis used_memory before any data was loaded. */
  empty: { rss: number; redisUsedMemory: number | undefined };
  /** What one scenario leaves for a later one (e.g. the imported segment `subtract` uses). */
  extra: { importedAll?: string };
  /** Releases everything set-up made. */
  close(): Promise<void>;
}

/** Starts the service and baselines and loads the dataset into each. */
export async function setUp(options: BenchOptions, log: (line: string) => void): Promise<BenchContext> {
  const skipped: string[] = [];
  const baseline = <T>(made: T | string): T | undefined => {
    if (typeof made !== "string") return made;
    skipped.push(made);
    log(`skipping baseline: ${made}`);
    return undefined;
  };
  const redis = baseline(await RedisBaseline.connect(options.redisUrl));
  const postgres = baseline(await PostgresBaseline.connect(options.databaseUrl));
  const store = await serviceStore(options, log);
  const service = await spawnService(store.env);
  const empty = { rss: (await service.metrics()).get("process_resident_memory_bytes") ?? 0, redisUsedMemory: await redis?.usedMemory() };
  const client = createClient(SegmentService, service.address);
  const segments: LoadedSegment[] = [];
  try {
    for (const [index, spec] of segmentSpecs(options.seed, options.users, ADD_BATCH).entries()) {
      log(`loading ${spec.key} segment (${spec.size.toLocaleString("en-US")} members: ${spec.description})`);
      const loaded: LoadedSegment = { spec, number: index + 1, id: "", loadMs: { ours: 0 } };
      [loaded.id, loaded.loadMs.ours] = await loadOurs(client, service.address, spec, options.seed);
      if (redis !== undefined) loaded.loadMs.redis = await redis.load(spec.key, spec.members(), options.seed);
      if (postgres !== undefined) loaded.loadMs.postgres = await postgres.load(loaded.number, spec.members());
      if (postgres !== undefined && spec.key === "dense") {
        const rows = (function* () {
          for (const batch of spec.members()) yield batch.map((n) => ({ uid: n, id: userId(options.seed, n) }));
        })();
        loaded.loadMs.usersCopy = await postgres.copyUsers(rows);
      }
      segments.push(loaded);
    }
    await postgres?.analyze();
  } finally {
    client.close();
  }
  const context: BenchContext = {
    options,
    service,
    serviceEnv: store.env,
    store: store.description,
    segments,
    redis,
    postgres,
    skipped,
    empty,
    extra: {},
    close: async () => {
      await context.service.stop();
      await redis?.close();
      await postgres?.close();
      await store.drop();
    },
  };
  return context;
}

async function loadOurs(
  client: Client<typeof SegmentService>,
  address: string,
  spec: SegmentSpec,
  seed: number,
): Promise<[string, number]> {
  const { segment } = await client.createSegment({ name: `bench ${spec.key}`, type: SegmentType.STATIC });
  const id = segment?.id ?? "";
  await client.activateSegment({ segmentId: id });
  const raw = rawClient(address);
  let elapsed = 0;
  try {
    for (const batch of spec.members()) {
      // Made and encoded before the clock starts (see encoded.ts).
      const request = encodeAdd(id, batch, seed);
      const started = performance.now();
      await sendAdd(raw, request);
      elapsed += performance.now() - started;
    }
  } finally {
    raw.close();
  }
  return [id, elapsed];
}

/** The service's own store: a fresh Postgres database, or a PGlite directory. */
async function serviceStore(options: BenchOptions, log: (line: string) => void) {
  const dir = async (why: string) => {
    const path = await mkdtemp(join(tmpdir(), "segments-bench-"));
    return { env: { DATA_DIR: path }, description: `PGlite${why}`, drop: () => rm(path, { recursive: true, force: true }) };
  };
  if (options.store === "pglite") return dir("");
  const name = `segments_bench_store_${process.pid}`;
  const admin = new pg.Client({ connectionString: options.databaseUrl, connectionTimeoutMillis: 2_000 });
  try {
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${name}`);
  } catch (error: unknown) {
    log(`Postgres unreachable for the service's store (${String(error)}); using PGlite`);
    return dir(" (Postgres unreachable)");
  } finally {
    await admin.end().catch(() => undefined);
  }
  const url = new URL(options.databaseUrl);
  url.pathname = `/${name}`;
  return {
    env: { DATABASE_URL: url.toString() },
    description: "Postgres",
    drop: async () => {
      const client = new pg.Client({ connectionString: options.databaseUrl });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}
