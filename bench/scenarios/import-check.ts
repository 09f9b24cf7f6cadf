/**
 * import-check: what a large import costs everyone else. CheckMembership on the dense segment at
 * one call in flight (a separate load process, as in `check`), and small AddMembers calls to
 * another segment (from the bench process, one at a time), first with the service idle, then
 * while ImportMembers streams 1,000,000 ids in 50,000-id messages into a new segment. Up to
 * 500,000 of the ids are existing users and the rest are new, so the import also creates users:
 * the store's hardest path. The load under import runs for as long as the import alone took (at
 * least --duration), and imports repeat back to back until it ends, so the whole measured window,
 * staging and final commit alike, is "during an import".
 * Last, alone: ImportMembers of NEW_USERS ids no user has, sent as bytes encoded beforehand in
 * 100,000-id messages, against Postgres COPY of the same (uid, external id) rows into an
 * index-free table (issue 11's yardstick for new users, as in `bulk`).
 */
import { createClient } from "../../src/client/client.js";
import { SegmentType } from "../../src/gen/segments/v1/segment_pb.js";
import { ImportMode, SegmentService } from "../../src/gen/segments/v1/segment_service_pb.js";
import type { BenchContext } from "../lib/context.js";
import { userId } from "../lib/dataset.js";
import { encodeImportIds, rawClient, sendImport } from "../lib/encoded.js";
import { latencyHistogram, MAX_US } from "../lib/histogram.js";
import { type LoadResult, runLoad } from "../lib/load.js";
import type { Row } from "../lib/report.js";

const IMPORT_IDS = 1_000_000;
const MESSAGE_IDS = 50_000;
const MAX_KNOWN = 500_000;
/** The small write: ids per AddMembers, and the pause between two of them. */
const WRITE_IDS = 10;
const WRITE_PAUSE_MS = 20;
/** The all-new-users import: ids, and ids per message. */
const NEW_USERS = 1_000_000;
const NEW_USER_MESSAGE_IDS = 100_000;

type SegmentClient = ReturnType<typeof createClient<typeof SegmentService>>;

/** Latency figures of a series of small writes, in µs. */
interface WriteFigures {
  p50Us: number;
  p99Us: number;
  maxUs: number;
  calls: number;
  failed: Record<string, number>;
}

/** Runs the import-check scenario. */
export async function importCheck(ctx: BenchContext, log: (line: string) => void): Promise<Row[]> {
  const { options } = ctx;
  const dense = ctx.segments.find((s) => s.spec.key === "dense");
  if (dense === undefined) throw new Error("the dense segment was not loaded");
  const client = createClient(SegmentService, ctx.service.address);
  try {
    const writeTarget = await activeSegment(client, "bench import-check writes");
    const target = { kind: "grpc-check" as const, address: ctx.service.address, segmentId: dense.id };
    const shape = { durationMs: options.durationMs, users: options.users, seed: options.seed, workers: 1, concurrency: 1 };
    const known = Math.min(options.users, MAX_KNOWN);
    const share = `${Math.round((100 * (IMPORT_IDS - known)) / IMPORT_IDS)}% new users`;

    log("import-check: CheckMembership and small AddMembers, idle");
    const idle = await runLoad(target, shape);
    const idleWrites = await smallWrites(client, writeTarget, () => false, options.durationMs);

    log(`import-check: ImportMembers of ${IMPORT_IDS.toLocaleString("en-US")} ids (${share}) alone`);
    let imports = 0;
    const alone = await importOnce(client, ctx, ++imports, known);

    log("import-check: the same while CheckMembership and small AddMembers run");
    let loadDone = false;
    let importing = true;
    const load = runLoad(target, { ...shape, durationMs: Math.max(options.durationMs, Math.round(alone)) }).finally(() => {
      loadDone = true;
    });
    const busyWrites = smallWrites(client, writeTarget, () => !importing, Number.POSITIVE_INFINITY);
    const during: number[] = [];
    do during.push(await importOnce(client, ctx, ++imports, known));
    while (!loadDone);
    importing = false;
    const busy = await load;
    const writes = await busyWrites;
    reportErrors(log, { idle, busy }, { idle: idleWrites, busy: writes });
    const idsPerSecond = (ms: number) => IMPORT_IDS / (ms / 1000);
    const meanDuring = during.reduce((a, b) => a + b, 0) / during.length;
    log(`import-check: ${during.length} import(s) under load, ${during.map((ms) => `${Math.round(ms)} ms`).join(", ")}`);

    log(`import-check: ImportMembers of ${NEW_USERS.toLocaleString("en-US")} new users alone, and COPY of the same rows`);
    const newUsers = await importNewUsers(client, ctx);

    const during1M = `during ImportMembers of 1M ids (${share})`;
    const idleBaseline = "same service, idle";
    const row = (figure: string, unit: string, better: Row["better"], ours: number, baseline: string, baselineValue?: number): Row => ({
      scenario: "import-check",
      figure,
      unit,
      better,
      ours,
      baseline,
      baselineValue,
    });
    return [
      row(`CheckMembership p50, 1 in flight, ${during1M}`, "µs", "lower", busy.p50Us, idleBaseline, idle.p50Us),
      row(`CheckMembership p99, 1 in flight, ${during1M}`, "µs", "lower", busy.p99Us, idleBaseline, idle.p99Us),
      row(`CheckMembership p99.9, 1 in flight, ${during1M}`, "µs", "lower", busy.p999Us, idleBaseline, idle.p999Us),
      row(
        `AddMembers of ${WRITE_IDS} ids to another segment, p99, ${during1M}`,
        "µs",
        "lower",
        writes.p99Us,
        idleBaseline,
        idleWrites.p99Us,
      ),
      row(
        `AddMembers of ${WRITE_IDS} ids to another segment, max, ${during1M}`,
        "µs",
        "lower",
        writes.maxUs,
        idleBaseline,
        idleWrites.maxUs,
      ),
      row(
        `ImportMembers of 1M ids (${share}), 50k-id messages, under that load`,
        "ids/s",
        "higher",
        idsPerSecond(meanDuring),
        "the same import alone",
        idsPerSecond(alone),
      ),
      row(
        `ImportMembers of ${NEW_USERS.toLocaleString("en-US")} new users, one stream, alone`,
        "ids/s",
        "higher",
        NEW_USERS / (newUsers.ours / 1000),
        "Postgres COPY of the (uid, external id) rows into an index-free table",
        newUsers.copy === undefined ? undefined : NEW_USERS / (newUsers.copy / 1000),
      ),
    ];
  } finally {
    client.close();
  }
}

async function activeSegment(client: SegmentClient, name: string): Promise<string> {
  const { segment } = await client.createSegment({ name, type: SegmentType.STATIC });
  const id = segment?.id ?? "";
  await client.activateSegment({ segmentId: id });
  return id;
}

/**
 * One ImportMembers stream of IMPORT_IDS ids into a new segment: the first `known` are existing
 * users, the rest new ones unique to import `run`. Returns its duration in ms.
 */
async function importOnce(client: SegmentClient, ctx: BenchContext, run: number, known: number): Promise<number> {
  const { segment } = await client.createSegment({ name: `bench import-check ${run}`, type: SegmentType.STATIC });
  const id = segment?.id ?? "";
  const seed = ctx.options.seed;
  const messages = function* () {
    for (let from = 0; from < IMPORT_IDS; from += MESSAGE_IDS) {
      const userIds = Array.from({ length: Math.min(MESSAGE_IDS, IMPORT_IDS - from) }, (_, i) =>
        from + i < known ? userId(seed, from + i) : `import_${run}_${from + i}`,
      );
      yield { ...(from === 0 ? { segmentId: id, mode: ImportMode.ADD } : {}), userIds };
    }
  };
  const started = performance.now();
  const result = await client.importMembers(messages());
  const ms = performance.now() - started;
  if (result.memberCount !== BigInt(IMPORT_IDS)) throw new Error(`import ${run} left ${result.memberCount} members, not ${IMPORT_IDS}`);
  return ms;
}

/** ImportMembers of NEW_USERS new users into a new segment, and COPY of the same rows: each one's ms. */
async function importNewUsers(client: SegmentClient, ctx: BenchContext): Promise<{ ours: number; copy: number | undefined }> {
  const { segment } = await client.createSegment({ name: "bench import-check new users", type: SegmentType.STATIC });
  const batches = () =>
    (function* () {
      for (let from = 0; from < NEW_USERS; from += NEW_USER_MESSAGE_IDS) {
        yield Array.from({ length: Math.min(NEW_USER_MESSAGE_IDS, NEW_USERS - from) }, (_, i) => `new_user_${from + i}`);
      }
    })();
  // Made and encoded before the clock starts (see encoded.ts).
  const messages = encodeImportIds(segment?.id ?? "", batches());
  const raw = rawClient(ctx.service.address);
  const started = performance.now();
  const result = await sendImport(raw, messages).finally(() => raw.close());
  const ours = performance.now() - started;
  if (result.memberCount !== BigInt(NEW_USERS)) throw new Error(`the new-user import left ${result.memberCount} members, not ${NEW_USERS}`);
  const rows = (function* () {
    let uid = 0;
    for (const batch of batches()) yield batch.map((id) => ({ uid: uid++, id }));
  })();
  return { ours, copy: await ctx.postgres?.copyUsers(rows) };
}

/**
 * AddMembers of WRITE_IDS ids (half named like dataset users, half new) to `segmentId`, one at a time with a short pause,
 * until `stop()` or `durationMs`; latency of each in an HDR histogram. Failures are counted by
 * code and recorded at their latency, since a refused write is a write that did not commit.
 */
async function smallWrites(client: SegmentClient, segmentId: string, stop: () => boolean, durationMs: number): Promise<WriteFigures> {
  const histogram = latencyHistogram();
  const failed: Record<string, number> = {};
  const end = performance.now() + durationMs;
  let calls = 0;
  for (let n = 0; !stop() && performance.now() < end; n++) {
    const userIds = Array.from({ length: WRITE_IDS }, (_, i) => (i % 2 === 0 ? `user_${2 * (n * WRITE_IDS + i)}` : `write_${n}_${i}`));
    const started = performance.now();
    try {
      await client.addMembers({ segmentId, userIds });
    } catch (error: unknown) {
      const code = String((error as { code?: unknown }).code ?? "unknown");
      failed[code] = (failed[code] ?? 0) + 1;
    }
    histogram.recordValue(Math.min(MAX_US, Math.max(1, Math.round((performance.now() - started) * 1000))));
    calls++;
    await new Promise((resolve) => setTimeout(resolve, WRITE_PAUSE_MS));
  }
  return {
    p50Us: histogram.getValueAtPercentile(50),
    p99Us: histogram.getValueAtPercentile(99),
    maxUs: histogram.maxValue,
    calls,
    failed,
  };
}

function reportErrors(log: (line: string) => void, loads: Record<string, LoadResult>, writes: Record<string, WriteFigures>): void {
  for (const [when, result] of Object.entries(loads)) {
    const errors = Object.keys(result.errors).length > 0 ? `, errors by code ${JSON.stringify(result.errors)}` : "";
    log(`  CheckMembership ${when}: ${result.calls} calls, p50 ${result.p50Us} µs, p99 ${result.p99Us} µs${errors}`);
  }
  for (const [when, result] of Object.entries(writes)) {
    const failed = Object.keys(result.failed).length > 0 ? `, failed by code ${JSON.stringify(result.failed)}` : "";
    log(`  AddMembers ${when}: ${result.calls} calls, p50 ${result.p50Us} µs, max ${result.maxUs} µs${failed}`);
  }
}
