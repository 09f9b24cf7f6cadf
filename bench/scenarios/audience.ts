/**
 * audience: what a campaign sender asks. Six extra segments go into each system: five include
 * segments and one exclude segment of users/10 members each (one seeded random user per block of
 * ten users, so the include segments overlap as independent samples would). Then:
 * - CountAudience(5 include, 1 exclude) vs Redis SUNIONSTORE + SDIFFSTORE + SCARD and a Postgres
 *   count(*) of UNION … EXCEPT;
 * - StreamAudience of the same audience read fully in batches of 10,000 vs Redis (the same two
 *   stores, then SSCAN COUNT 10000 to the end) and Postgres COPY (UNION … EXCEPT) TO STDOUT;
 * - the service's RSS growth while a slow reader (1/10 of the fast reader's rate) consumes the
 *   StreamAudience of an EVERYONE segment, vs while a fast reader reads the same stream.
 * Every timing is one warm-up, then five timed runs (a baseline: up to five within --duration, at
 * least one); the median counts. The three systems must agree on the audience's size.
 */
import { createClient } from "../../src/client/client.js";
import { MembershipService } from "../../src/gen/segments/v1/membership_service_pb.js";
import { SegmentType } from "../../src/gen/segments/v1/segment_pb.js";
import { SegmentService } from "../../src/gen/segments/v1/segment_service_pb.js";
import type { BenchContext } from "../lib/context.js";
import { batches, rng } from "../lib/dataset.js";
import type { Row } from "../lib/report.js";
import { importNumbers } from "./import.js";

const INCLUDE = 5;
/** The Postgres baseline's segment_id of include segment k is FIRST_NUMBER + k; the exclude segment's follows them. */
const FIRST_NUMBER = 20;
const BATCH = 10_000;
const TIMED_RUNS = 5;
const SAMPLE_MS = 200;
/** The slow reader reads at 1/SLOWER of the fast reader's rate. */
const SLOWER = 10;
const MB = 1e6;

type Membership = ReturnType<typeof createClient<typeof MembershipService>>;

/** One audience segment as loaded in each system. */
interface AudienceSegment {
  id: string;
  key: string;
  number: number;
}

/** Runs the audience scenario. */
export async function audienceScenario(ctx: BenchContext, log: (line: string) => void): Promise<Row[]> {
  const size = Math.floor(ctx.options.users / 10);
  const loaded: AudienceSegment[] = [];
  for (let k = 0; k <= INCLUDE; k++) {
    const key = k < INCLUDE ? `audience-include-${k}` : "audience-exclude";
    log(`audience: loading ${key} (${size.toLocaleString("en-US")} members)`);
    loaded.push(await loadSegment(ctx, key, FIRST_NUMBER + k));
  }
  const include = loaded.slice(0, INCLUDE);
  const exclude = loaded[INCLUDE] as AudienceSegment;
  const client = createClient(MembershipService, ctx.service.address);
  try {
    const count = await countFigures(ctx, log, client, include, exclude);
    const stream = await streamFigures(ctx, log, client, include, exclude);
    const memory = await slowReaderFigures(ctx, log, client, stream.fastRate);
    return [...count, ...stream.rows, ...memory];
  } finally {
    client.close();
    await ctx.redis?.drop("audience", "audience:union");
  }
}

/** users/10 members: one user per block of ten, drawn from a seeded RNG of its own. */
function sample(seed: number, users: number): () => Generator<number[]> {
  return () =>
    batches(100_000, function* () {
      const next = rng(seed);
      for (let block = 0; block + 10 <= users; block += 10) yield block + Math.floor(next() * 10);
    });
}

async function loadSegment(ctx: BenchContext, key: string, number: number): Promise<AudienceSegment> {
  const { options } = ctx;
  const members = sample(options.seed * 31 + number, options.users);
  const { id } = await importNumbers(ctx, `bench ${key}`, members());
  await ctx.redis?.load(key, members(), options.seed);
  await ctx.postgres?.load(number, members());
  return { id, key, number };
}

/**
 * One warm-up, then up to TIMED_RUNS runs within `budgetMs` (at least `least`): the median ms and
 * the last result. Ours always gets all TIMED_RUNS; a slow baseline may get fewer.
 */
async function timed<T>(budgetMs: number, run: () => Promise<T>, least = 1): Promise<{ ms: number; result: T }> {
  let result = await run();
  const times: number[] = [];
  const started = performance.now();
  do {
    const t = performance.now();
    result = await run();
    times.push(performance.now() - t);
  } while (times.length < TIMED_RUNS && (times.length < least || performance.now() - started < budgetMs));
  times.sort((a, b) => a - b);
  return { ms: times[Math.floor(times.length / 2)] as number, result };
}

function agree(what: string, ours: number, others: Record<string, number | undefined>): void {
  for (const [name, value] of Object.entries(others)) {
    if (value !== undefined && value !== ours) throw new Error(`${what}: ours is ${ours} users, ${name} says ${value}`);
  }
}

async function countFigures(
  ctx: BenchContext,
  log: (line: string) => void,
  client: Membership,
  include: AudienceSegment[],
  exclude: AudienceSegment,
): Promise<Row[]> {
  const budget = ctx.options.durationMs;
  const request = { includeSegmentIds: include.map((s) => s.id), excludeSegmentIds: [exclude.id] };
  const ours = await timed(budget, async () => Number((await client.countAudience(request)).count), TIMED_RUNS);
  const { redis, postgres } = ctx;
  const keys = include.map((s) => s.key);
  const numbers = include.map((s) => s.number);
  const viaRedis = redis && (await timed(budget, () => redis.audienceCount(keys, exclude.key)));
  const viaPostgres = postgres && (await timed(budget, () => postgres.audienceCount(numbers, exclude.number)));
  agree("CountAudience", ours.result, { Redis: viaRedis?.result, Postgres: viaPostgres?.result });
  log(`audience: ${ours.result.toLocaleString("en-US")} users; CountAudience ${ours.ms.toFixed(2)} ms`);
  const figure = `CountAudience, ${INCLUDE} include − 1 exclude (${ours.result.toLocaleString("en-US")} users)`;
  const row = (baseline: string, baselineValue: number | undefined): Row => ({
    scenario: "audience",
    figure,
    unit: "ms",
    better: "lower",
    ours: ours.ms,
    baseline,
    baselineValue,
  });
  return [row("Redis SUNIONSTORE + SDIFFSTORE + SCARD", viaRedis?.ms), row("Postgres count(*) of UNION … EXCEPT", viaPostgres?.ms)];
}

async function streamFigures(
  ctx: BenchContext,
  log: (line: string) => void,
  client: Membership,
  include: AudienceSegment[],
  exclude: AudienceSegment,
): Promise<{ rows: Row[]; fastRate: number }> {
  const budget = ctx.options.durationMs;
  const request = { includeSegmentIds: include.map((s) => s.id), excludeSegmentIds: [exclude.id], batchSize: BATCH };
  const ours = await timed(budget, async () => (await readStream(client, request)).read, TIMED_RUNS);
  const { redis, postgres } = ctx;
  const keys = include.map((s) => s.key);
  const numbers = include.map((s) => s.number);
  const viaRedis = redis && (await timed(budget, () => redis.audienceScan(keys, exclude.key, BATCH)));
  const viaPostgres = postgres && (await timed(budget, () => postgres.audienceCopy(numbers, exclude.number)));
  agree("StreamAudience", ours.result, { Redis: viaRedis?.result, Postgres: viaPostgres?.result });
  const rate = (run: { ms: number; result: number } | undefined) => (run === undefined ? undefined : run.result / (run.ms / 1000));
  const fastRate = rate(ours) ?? 0;
  log(`audience: StreamAudience ${Math.round(fastRate).toLocaleString("en-US")} ids/s (${ours.ms.toFixed(1)} ms)`);
  const figure = `StreamAudience of that audience (${ours.result.toLocaleString("en-US")} ids), read fully in batches of ${BATCH.toLocaleString("en-US")}`;
  const row = (baseline: string, baselineValue: number | undefined): Row => ({
    scenario: "audience",
    figure,
    unit: "ids/s",
    better: "higher",
    ours: fastRate,
    baseline,
    baselineValue,
  });
  return {
    fastRate,
    rows: [
      row(`Redis SUNIONSTORE + SDIFFSTORE, then SSCAN COUNT ${BATCH}`, rate(viaRedis)),
      row("Postgres COPY (UNION … EXCEPT) TO STDOUT", rate(viaPostgres)),
    ],
  };
}

/** Reads a StreamAudience; with `pace` (ids/s) no faster than that, and with `stopAfterMs` cancelled then. */
async function readStream(
  client: Membership,
  request: { includeSegmentIds: string[]; excludeSegmentIds: string[]; batchSize: number },
  pace?: { idsPerSecond: number; stopAfterMs: number },
): Promise<{ read: number; total: number; ms: number }> {
  const abort = new AbortController();
  const started = performance.now();
  let read = 0;
  let total = 0;
  try {
    for await (const batch of client.streamAudience(request, { signal: abort.signal })) {
      if (read === 0) total = Number(batch.totalCount);
      read += batch.userIds.length;
      if (pace === undefined) continue;
      const elapsed = performance.now() - started;
      if (elapsed >= pace.stopAfterMs) {
        abort.abort();
        break;
      }
      const due = (read / pace.idsPerSecond) * 1000;
      if (due > elapsed) await sleep(Math.min(due, pace.stopAfterMs) - elapsed);
    }
  } catch (error: unknown) {
    if (!abort.signal.aborted) throw error;
  }
  return { read, total, ms: performance.now() - started };
}

/** The service's RSS before `work` and its highest value, sampled every SAMPLE_MS, while it runs. */
async function rssDuring<T>(ctx: BenchContext, work: () => Promise<T>): Promise<{ result: T; before: number; peak: number }> {
  const rss = async () => (await ctx.service.metrics()).get("process_resident_memory_bytes") ?? 0;
  const before = await rss();
  let peak = before;
  let done = false;
  const sampler = (async () => {
    while (!done) {
      await sleep(SAMPLE_MS);
      peak = Math.max(peak, await rss());
    }
  })();
  try {
    return { result: await work(), before, peak };
  } finally {
    done = true;
    await sampler;
  }
}

async function slowReaderFigures(ctx: BenchContext, log: (line: string) => void, client: Membership, fastRate: number): Promise<Row[]> {
  const segments = createClient(SegmentService, ctx.service.address);
  let everyone: string;
  try {
    const { segment } = await segments.createSegment({ name: "bench audience everyone", type: SegmentType.EVERYONE });
    everyone = segment?.id ?? "";
    await segments.activateSegment({ segmentId: everyone });
  } finally {
    segments.close();
  }
  const request = { includeSegmentIds: [everyone], excludeSegmentIds: [], batchSize: BATCH };
  const users = ctx.options.users;
  const idsPerSecond = Math.max(1, fastRate / SLOWER);
  const stopAfterMs = Math.min(ctx.options.durationMs, (users / idsPerSecond) * 1000);
  // The slow reader first, so the fast read's garbage does not count as its baseline.
  const slow = await rssDuring(ctx, () => readStream(client, request, { idsPerSecond, stopAfterMs }));
  const fast = await rssDuring(ctx, () => readStream(client, request));
  const growth = (r: { before: number; peak: number }) => (r.peak - r.before) / MB;
  log(
    `audience: EVERYONE (${fast.result.total.toLocaleString("en-US")} ids): slow reader ${slow.result.read.toLocaleString("en-US")} ids in ` +
      `${(slow.result.ms / 1000).toFixed(1)} s, RSS ${(slow.before / MB).toFixed(0)} → peak ${(slow.peak / MB).toFixed(0)} MB; ` +
      `fast reader ${Math.round(fast.result.read / (fast.result.ms / 1000)).toLocaleString("en-US")} ids/s, RSS ${(fast.before / MB).toFixed(0)} → peak ${(fast.peak / MB).toFixed(0)} MB`,
  );
  return [
    {
      scenario: "audience",
      figure:
        `service RSS growth, StreamAudience of EVERYONE (${fast.result.total.toLocaleString("en-US")} ids) read at 1/${SLOWER} ` +
        `of the fast rate (${Math.round(idsPerSecond).toLocaleString("en-US")} ids/s) for ${(stopAfterMs / 1000).toFixed(1)} s`,
      unit: "MB",
      better: "lower",
      ours: growth(slow),
      baseline: "the same stream, fast reader",
      baselineValue: growth(fast),
    },
  ];
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}
