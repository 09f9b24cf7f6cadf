/**
 * The fuzzer behind test/integration/fuzz.test.ts and `npm run fuzz`: a raw grpc-js client
 * (identity serializers, so any bytes go out) calls every method of SegmentService and
 * MembershipService, one call in flight, with the messages of fuzz-messages.ts, and checks
 * what a careful user relies on: no INTERNAL or UNKNOWN answer, a refused call changes nothing,
 * the server keeps answering its health check, and its event loop never stalls.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { type DescMethod, type DescService, fromBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { createClient } from "../../src/client/client.js";
import { HealthCheckResponse_ServingStatus, HealthCheckResponseSchema } from "../../src/gen/grpc/health/v1/health_pb.js";
import { MembershipService } from "../../src/gen/segments/v1/membership_service_pb.js";
import { SegmentStatus, SegmentType } from "../../src/gen/segments/v1/segment_pb.js";
import { SegmentService } from "../../src/gen/segments/v1/segment_service_pb.js";
import { Dice, type FuzzMessage, fuzzMessage, type Pools } from "./fuzz-messages.js";

/** The services under test: every method of each is fuzzed, implemented or not. */
export const FUZZED_SERVICES: readonly DescService[] = [SegmentService, MembershipService];

/** Methods that may change state: after a refusal of one, the state must be what it was. */
const READ_ONLY = new Set([
  "GetSegment",
  "ListSegments",
  "ListMembers",
  "DiffMembership",
  "ListSegmentHistory",
  "PreviewQuery",
  "ListEvaluations",
  "CheckMembership",
  "BatchCheckMembership",
  "ListUserSegments",
  "CountAudience",
  "StreamAudience",
  "ValidateTargeting",
  "WatchMembership",
]);

/** Answers no input may produce: they mean a fault inside the server. */
const FORBIDDEN = new Set<number>([grpc.status.INTERNAL, grpc.status.UNKNOWN]);

const MAX_MESSAGE = 64 * 1024 * 1024;
const CALL_DEADLINE_MS = 30_000;
/** A server stream (WatchMembership never ends by itself) is read this long, then cancelled. */
const STREAM_READ_MS = 1_000;
const HEALTH_EVERY = 50;
/** Client-side work longer than this is let through the delay monitor before a call's window opens. */
const CLIENT_WORK_MS = 5;
const MONITOR_RESOLUTION_MS = 10;

/** What a run is told. */
export interface FuzzOptions {
  address: string;
  seed: number;
  requests: number;
  /** Stop early (at a request boundary) after this long; the run is still a prefix of the seeded sequence. */
  timeLimitMs?: number;
  /** Receives a line every 1,000 requests. */
  progress?: (line: string) => void;
}

/** A request that broke a promise, printable. */
export interface FuzzFailure {
  kind: "forbidden code" | "state changed" | "health" | "event loop";
  request: number;
  method: string;
  how: string;
  detail: string;
  /** The request's first 256 bytes, as hex (every message of a stream, for ImportMembers). */
  hex: string;
}

/** What a run did and found. */
export interface FuzzReport {
  seed: number;
  requests: number;
  durationMs: number;
  byMethod: Record<string, Record<string, number>>;
  byCode: Record<string, number>;
  /** Longest stall of the event loop seen during a call (ms) and the call it happened in. */
  maxLoopDelayMs: number;
  worstLoopCall: string;
  healthChecks: number;
  stateChecks: number;
  failures: FuzzFailure[];
}

/** Seeds the service with segments in every status, members, versions and page tokens. */
export async function seedState(address: string): Promise<Pools> {
  const client = createClient(SegmentService, address);
  try {
    const make = async (name: string, type: SegmentType, query?: object) =>
      (await client.createSegment({ name, type, ...(query === undefined ? {} : { query }) })).segment?.id ?? "";
    const members = Array.from({ length: 300 }, (_, n) => `member_${n}`);
    const a = await make("seed active A", SegmentType.STATIC);
    await client.addMembers({ segmentId: a, userIds: members.slice(0, 150) });
    await client.addMembers({ segmentId: a, userIds: members.slice(100, 300) });
    await client.removeMembers({ segmentId: a, userIds: members.slice(0, 40) });
    await client.activateSegment({ segmentId: a });
    const b = await make("seed active B", SegmentType.STATIC);
    await client.addMembers({ segmentId: b, userIds: members.filter((_, n) => n % 3 === 0) });
    await client.activateSegment({ segmentId: b });
    const draft = await make("seed draft", SegmentType.STATIC);
    await client.addMembers({ segmentId: draft, userIds: members.slice(0, 10) });
    const paused = await make("seed paused", SegmentType.STATIC);
    await client.addMembers({ segmentId: paused, userIds: members.slice(50, 70) });
    await client.activateSegment({ segmentId: paused });
    await client.pauseSegment({ segmentId: paused });
    const archived = await make("seed archived", SegmentType.STATIC);
    await client.archiveSegment({ segmentId: archived });
    const dynamic = await make("seed dynamic", SegmentType.DYNAMIC, {
      kind: { case: "filter", value: { kind: { case: "event", value: { name: "signup", minCount: 1 } } } },
    });
    const everyone = await make("seed everyone", SegmentType.EVERYONE);
    await client.activateSegment({ segmentId: everyone });
    const a3 = await client.getSegment({ segmentId: a });
    const tokens = [
      (await client.listMembers({ segmentId: a, pageSize: 25 })).nextPageToken,
      (await client.listMembers({ segmentId: everyone, pageSize: 25 })).nextPageToken,
      (await client.listSegments({ pageSize: 2 })).nextPageToken,
      (await client.listSegments({ pageSize: 1, showArchived: true, type: SegmentType.STATIC })).nextPageToken,
      (await client.diffMembership({ segmentId: a, fromVersion: 0n, toVersion: a3.segment?.version ?? 0n, pageSize: 10 })).nextPageToken,
      (await client.listSegmentHistory({ segmentId: a, pageSize: 1 })).nextPageToken,
    ].filter((t) => t !== "");
    return {
      segmentIds: [a, b, draft, paused, archived, dynamic, everyone],
      userIds: members,
      tokens,
      versions: [0n, 1n, 2n, 3n],
    };
  } finally {
    client.close();
  }
}

/** Runs the fuzzer against a seeded service; never throws for what it finds, only reports it. */
export async function runFuzz(options: FuzzOptions, pools: Pools): Promise<FuzzReport> {
  const raw = new grpc.Client(options.address, grpc.credentials.createInsecure(), {
    "grpc.max_send_message_length": MAX_MESSAGE,
    "grpc.max_receive_message_length": MAX_MESSAGE,
  });
  const typed = createClient(SegmentService, options.address);
  const loop = monitorEventLoopDelay({ resolution: MONITOR_RESOLUTION_MS });
  loop.enable();
  const methods = FUZZED_SERVICES.flatMap((s) => s.methods);
  const dice = new Dice(options.seed);
  const report: FuzzReport = {
    seed: options.seed,
    requests: 0,
    durationMs: 0,
    byMethod: {},
    byCode: {},
    maxLoopDelayMs: 0,
    worstLoopCall: "",
    healthChecks: 0,
    stateChecks: 0,
    failures: [],
  };
  const started = performance.now();
  try {
    let state = await snapshot(typed);
    for (let n = 1; n <= options.requests; n++) {
      if (options.timeLimitMs !== undefined && performance.now() - started > options.timeLimitMs) break;
      // Round-robin over methods so each gets its share; the message is the random part.
      const method = methods[(n - 1) % methods.length] as DescMethod;
      const buildStart = performance.now();
      const messages =
        method.methodKind === "client_streaming" ? streamMessages(method, dice, pools) : [fuzzMessage(method.input, dice, pools)];
      // The client shares this process's event loop (the service runs in-process in the test): its
      // own work building a large message must be recorded before the call's window opens, so
      // that window holds the server's work (decode, handler, store, encode) and only the thin
      // framing the client does for bytes it merely hands over.
      if (performance.now() - buildStart > CLIENT_WORK_MS) await sleep(2 * MONITOR_RESOLUTION_MS + 1);
      loop.reset();
      const code = await call(raw, method, messages, dice);
      const delayMs = loop.max / 1e6;
      const name = method.name;
      report.requests = n;
      const codeName = tally(report, name, code);
      const fail = (kind: FuzzFailure["kind"], detail: string) =>
        report.failures.push({ kind, request: n, method: name, how: messages.map((m) => m.how).join(" | "), detail, hex: hex(messages) });
      if (delayMs > report.maxLoopDelayMs) {
        report.maxLoopDelayMs = delayMs;
        report.worstLoopCall = `#${n} ${name} (${messages.map((m) => m.how).join(" | ")})`;
      }
      if (delayMs > 200) fail("event loop", `the event loop stalled for ${delayMs.toFixed(0)} ms during the call`);
      if (FORBIDDEN.has(code)) fail("forbidden code", `answered ${codeName}`);
      if (!READ_ONLY.has(name)) {
        const after = await snapshot(typed);
        report.stateChecks++;
        if (code !== grpc.status.OK) {
          const diff = difference(state, after);
          if (diff !== undefined) fail("state changed", `refused with ${codeName}, yet ${diff}`);
        }
        state = after;
        refreshPools(pools, after);
      } else if (n % HEALTH_EVERY === 0) {
        // Reads change nothing either; checked now and then against the last snapshot.
        const after = await snapshot(typed);
        report.stateChecks++;
        const diff = difference(state, after);
        if (diff !== undefined) fail("state changed", `after read-only calls up to this one, ${diff}`);
        state = after;
      }
      if (n % HEALTH_EVERY === 0 || code === grpc.status.UNAVAILABLE) {
        report.healthChecks++;
        const health = await healthCheck(raw);
        if (health !== undefined) fail("health", health);
      }
      if (n % 1_000 === 0)
        options.progress?.(`${n} requests, ${report.failures.length} failures, max loop delay ${report.maxLoopDelayMs.toFixed(0)} ms`);
    }
    report.healthChecks++;
    const health = await healthCheck(raw);
    if (health !== undefined) {
      report.failures.push({ kind: "health", request: report.requests, method: "Health/Check", how: "final", detail: health, hex: "" });
    }
  } finally {
    loop.disable();
    typed.close();
    raw.close();
  }
  report.durationMs = performance.now() - started;
  return report;
}

/** Counts the call by method and code; returns the code's name. */
function tally(report: FuzzReport, method: string, code: number): string {
  const codeName = grpc.status[code] ?? String(code);
  const counts = report.byMethod[method] ?? {};
  counts[codeName] = (counts[codeName] ?? 0) + 1;
  report.byMethod[method] = counts;
  report.byCode[codeName] = (report.byCode[codeName] ?? 0) + 1;
  return codeName;
}

/** The messages of one ImportMembers stream: zero to six, each fuzzed like a unary request. */
function streamMessages(method: DescMethod, dice: Dice, pools: Pools): FuzzMessage[] {
  const length = dice.chance(0.05) ? 0 : dice.int(6) + 1;
  // Half the streams are well formed throughout, so that they reach the store; the rest carry
  // one or more mutated messages.
  const mutating = dice.chance(0.5);
  const messages: FuzzMessage[] = [];
  for (let i = 0; i < length; i++) {
    // Later messages usually carry only ids, as a real client's do.
    const sub = i > 0 && dice.chance(0.7) ? { ...pools, segmentIds: [] } : pools;
    messages.push(fuzzMessage(method.input, dice, sub, mutating && dice.chance(0.4)));
  }
  return messages;
}

/** Makes one call with raw bytes; resolves to its status code. */
function call(client: grpc.Client, method: DescMethod, messages: FuzzMessage[], dice: Dice): Promise<number> {
  const path = `/${method.parent.typeName}/${method.name}`;
  const identity = (b: Buffer) => b;
  const options = { deadline: Date.now() + CALL_DEADLINE_MS };
  return new Promise((resolve) => {
    const done = (error: grpc.ServiceError | null) => resolve(error === null ? grpc.status.OK : error.code);
    switch (method.methodKind) {
      case "unary":
        client.makeUnaryRequest(path, identity, identity, messages[0]?.bytes ?? Buffer.alloc(0), new grpc.Metadata(), options, done);
        return;
      case "client_streaming": {
        const stream = client.makeClientStreamRequest(path, identity, identity, new grpc.Metadata(), options, done);
        for (const message of messages) stream.write(message.bytes);
        // Now and then the client gives up before its half-close: nothing may be applied.
        if (dice.chance(0.05)) stream.cancel();
        else stream.end();
        return;
      }
      case "server_streaming": {
        const stream = client.makeServerStreamRequest(
          path,
          identity,
          identity,
          messages[0]?.bytes ?? Buffer.alloc(0),
          new grpc.Metadata(),
          options,
        );
        const timer = setTimeout(() => stream.cancel(), STREAM_READ_MS);
        stream.on("data", () => undefined);
        stream.on("error", () => undefined);
        stream.on("status", (status: grpc.StatusObject) => {
          clearTimeout(timer);
          resolve(status.code);
        });
        return;
      }
      default:
        resolve(grpc.status.OK);
    }
  });
}

/** undefined when the server reports SERVING, else what went wrong. */
function healthCheck(client: grpc.Client): Promise<string | undefined> {
  const identity = (b: Buffer) => b;
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      "/grpc.health.v1.Health/Check",
      identity,
      identity,
      Buffer.alloc(0),
      new grpc.Metadata(),
      { deadline: Date.now() + 10_000 },
      (error, response) => {
        if (error !== null) return resolve(`health check failed: ${grpc.status[error.code]} ${error.details}`);
        const status = fromBinary(HealthCheckResponseSchema, response ?? Buffer.alloc(0)).status;
        resolve(status === HealthCheckResponse_ServingStatus.SERVING ? undefined : `health check answered ${status}`);
      },
    );
  });
}

/** Every segment (archived included) as the fields a change would touch, by id. */
type Snapshot = Map<string, string>;

async function snapshot(client: ReturnType<typeof createClient<typeof SegmentService>>): Promise<Snapshot> {
  const out: Snapshot = new Map();
  let pageToken = "";
  do {
    const page = await client.listSegments({ pageSize: 1_000, pageToken, showArchived: true });
    for (const s of page.segments) {
      const updated = s.updateTime === undefined ? "" : `${s.updateTime.seconds}.${s.updateTime.nanos}`;
      const fields = [
        s.name,
        s.description,
        SegmentType[s.type],
        SegmentStatus[s.status],
        `v${s.version}`,
        `${s.memberCount} members`,
        updated,
      ];
      out.set(s.id, JSON.stringify(fields));
    }
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
  return out;
}

/** What differs between two snapshots, or undefined. */
function difference(before: Snapshot, after: Snapshot): string | undefined {
  if (before.size !== after.size) return `the segment count went from ${before.size} to ${after.size}`;
  for (const [id, was] of before) {
    const now = after.get(id);
    if (now !== was) return `segment ${id} went from ${was} to ${now ?? "(gone)"}`;
  }
  return undefined;
}

/** Segments created (or deleted) by accepted calls join (or leave) the pool of real ids. */
function refreshPools(pools: Pools, state: Snapshot): void {
  pools.segmentIds.splice(0, pools.segmentIds.length, ...state.keys());
  for (const fields of state.values()) {
    const version = BigInt(((JSON.parse(fields) as string[])[4] ?? "v0").slice(1));
    if (pools.versions.length < 64 && !pools.versions.includes(version)) pools.versions.push(version);
  }
}

function hex(messages: FuzzMessage[]): string {
  return messages
    .map((m) => `${m.bytes.subarray(0, 256).toString("hex")}${m.bytes.length > 256 ? `…(${m.bytes.length} bytes)` : ""}`)
    .join(" | ");
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The report as text: figures by method and code, then the first failures of each kind. */
export function formatReport(report: FuzzReport, maxFailures = 5): string {
  const lines = [
    `seed ${report.seed}: ${report.requests} requests in ${(report.durationMs / 1000).toFixed(1)} s; ${report.stateChecks} state checks, ${report.healthChecks} health checks`,
    `max event-loop delay during a call: ${report.maxLoopDelayMs.toFixed(1)} ms (${report.worstLoopCall})`,
    `by code: ${JSON.stringify(report.byCode)}`,
    "by method:",
    ...Object.entries(report.byMethod).map(([method, codes]) => `  ${method}: ${JSON.stringify(codes)}`),
    `failures: ${report.failures.length}`,
  ];
  const byKind = new Map<string, FuzzFailure[]>();
  for (const f of report.failures) byKind.set(f.kind, [...(byKind.get(f.kind) ?? []), f]);
  for (const [kind, failures] of byKind) {
    lines.push(`  ${kind}: ${failures.length}`);
    for (const f of failures.slice(0, maxFailures)) lines.push(`    #${f.request} ${f.method} [${f.how}]: ${f.detail}\n      ${f.hex}`);
  }
  return lines.join("\n");
}
