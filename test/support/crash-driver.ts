/**
 * The kill -9 scenario, shared by test/integration/crash.test.ts and bench/crash.ts. The service
 * runs as a child process; one client loop per segment changes its membership, one call at a
 * time, while the process is SIGKILLed at a random moment and started again on the same store.
 * Each loop keeps an exact model of its segment, so the check after every restart is equality:
 * every acknowledged change is there, the call cut by the kill is wholly applied or not at all,
 * and the version counts exactly the changes applied.
 */
import { status as GrpcStatus, type ServiceError } from "@grpc/grpc-js";
import { rng } from "../../bench/lib/dataset.js";
import { ENTRY, type ServiceProcess, spawnService } from "../../bench/lib/service-process.js";
import { type Client, createClient } from "../../src/client/client.js";
import { MembershipService } from "../../src/gen/segments/v1/membership_service_pb.js";
import { SegmentType } from "../../src/gen/segments/v1/segment_pb.js";
import { ImportMode, SegmentService } from "../../src/gen/segments/v1/segment_service_pb.js";

/** The membership-changing calls the clients issue. */
export const OP_KINDS = ["add", "remove", "import", "subtract"] as const;
/** One of OP_KINDS. */
export type OpKind = (typeof OP_KINDS)[number];

/** What one run does. */
export interface CrashOptions {
  /** The store's settings (TestStore.env), the same for every start of the service. */
  env: Record<string, string | undefined>;
  seed: number;
  kills: number;
  /** Calls the clients may issue (default: all four). */
  ops?: readonly OpKind[];
  /** STATIC segments, each driven by one client loop (default 4). */
  segments?: number;
  /** Size of the id universe `c_0` … (default 3,000). */
  universe?: number;
  /** Bounds of the random delay from the clients' start to the kill (default 50–400 ms). */
  killDelayMs?: readonly [number, number];
  /** Receives one line per restart. */
  progress?: (line: string) => void;
}

/** What happened, and every broken promise found (empty when the service kept them all). */
export interface CrashReport {
  seed: number;
  kills: number;
  /** Acknowledged calls by kind. */
  acknowledged: Record<OpKind, number>;
  /** Acknowledged calls that changed nothing (and so wrote no version). */
  noops: number;
  /** Calls cut by a kill, by what the restarted service showed. */
  inDoubt: { applied: number; notApplied: number };
  /** gRPC codes of the calls cut by a kill. */
  cutCodes: Record<string, number>;
  /** Milliseconds from spawn to serving, for every start. */
  startMs: number[];
  /** Each driven segment's version at the end. */
  versions: number[];
  /** Lost or half-applied changes, wrong versions or counts, failed calls: the run stops at the first. */
  violations: string[];
  /** Acknowledged answers whose added / removed / unchanged counters disagree with the model (first 20). */
  wrongAnswers: string[];
}

/** The call codes a kill produces: the connection drops under the call. */
const CUT_CODES: readonly number[] = [GrpcStatus.UNAVAILABLE, GrpcStatus.CANCELLED, GrpcStatus.INTERNAL, GrpcStatus.DEADLINE_EXCEEDED];
const CALL_TIMEOUT_MS = 20_000;
const IMPORT_MODES = { ADD: ImportMode.ADD, REMOVE: ImportMode.REMOVE, REPLACE: ImportMode.REPLACE } as const;

type Op =
  | { kind: "add" | "remove"; ids: string[] }
  | { kind: "import"; mode: keyof typeof IMPORT_MODES; chunks: string[][] }
  | { kind: "subtract"; of: "exclusion" | "everyone" };

/** One driven segment: the model of what the service must hold. */
interface Driven {
  name: string;
  id: string;
  random: () => number;
  members: Set<string>;
  /** Number of membership-changing calls applied: the version the service must report. */
  version: number;
  /** Acknowledged calls with the version the service returned (for failure messages). */
  log: string[];
  /** The call a kill cut, until a restart shows whether it was applied. */
  inDoubt: Op | undefined;
}

interface World {
  universe: string[];
  ops: readonly OpKind[];
  driven: Driven[];
  exclusion: { id: string; members: Set<string>; version: number };
  everyoneId: string;
}

type Clients = { segments: Client<typeof SegmentService>; membership: Client<typeof MembershipService>; close(): void };

/** Reads CRASH_OPS-style text ("add,remove"); empty or undefined means every kind. */
export function parseOps(text: string | undefined): OpKind[] {
  if (text === undefined || text.trim() === "") return [...OP_KINDS];
  const ops = text.split(",").map((s) => s.trim());
  for (const op of ops)
    if (!(OP_KINDS as readonly string[]).includes(op)) throw new Error(`unknown op ${op}; choose from ${OP_KINDS.join(", ")}`);
  return ops as OpKind[];
}

/** Runs the scenario; throws only when the harness itself breaks, with the seed in the message. */
export async function runCrashScenario(options: CrashOptions): Promise<CrashReport> {
  const { seed, kills } = options;
  const env = Object.fromEntries(Object.entries(options.env).filter((e): e is [string, string] => e[1] !== undefined));
  const [minDelay, maxDelay] = options.killDelayMs ?? [50, 400];
  const report: CrashReport = {
    seed,
    kills: 0,
    acknowledged: { add: 0, remove: 0, import: 0, subtract: 0 },
    noops: 0,
    inDoubt: { applied: 0, notApplied: 0 },
    cutCodes: {},
    startMs: [],
    versions: [],
    violations: [],
    wrongAnswers: [],
  };
  const killRandom = rng(seed);
  let service = await spawnService(env, ENTRY.source);
  report.startMs.push(service.readyMs);
  try {
    const world = await setUp(service.address, options);
    for (let kill = 1; kill <= kills && report.violations.length === 0; kill++) {
      const delay = minDelay + Math.floor(killRandom() * (maxDelay - minDelay + 1));
      await driveUntilKilled(service, world, delay, report, kill);
      report.kills = kill;
      try {
        service = await spawnService(env, ENTRY.source);
      } catch (error: unknown) {
        report.violations.push(`kill ${kill}: the service did not come back: ${String(error)}`);
        break;
      }
      report.startMs.push(service.readyMs);
      await verify(service.address, world, report, kill);
      const versions = world.driven.map((d) => d.version).join(", ");
      options.progress?.(`kill ${kill}/${kills} after ${delay} ms; back in ${Math.round(service.readyMs)} ms; versions ${versions}`);
    }
    report.versions = world.driven.map((d) => d.version);
    return report;
  } catch (error: unknown) {
    throw new Error(`crash scenario failed (seed ${seed}, after ${report.kills} kills): ${String(error)}`, { cause: error });
  } finally {
    await service.stop("SIGKILL");
  }
}

function connect(address: string): Clients {
  const segments = createClient(SegmentService, address);
  const membership = createClient(MembershipService, address);
  return {
    segments,
    membership,
    close: () => {
      segments.close();
      membership.close();
    },
  };
}

/** Creates and activates the driven segments, the exclusion segment (filled once) and an EVERYONE segment. */
async function setUp(address: string, options: CrashOptions): Promise<World> {
  const clients = connect(address);
  try {
    const create = async (name: string, type: SegmentType) => {
      const { segment } = await clients.segments.createSegment({ name, type });
      const id = segment?.id ?? "";
      await clients.segments.activateSegment({ segmentId: id });
      return id;
    };
    const universe = Array.from({ length: options.universe ?? 3_000 }, (_, n) => `c_${n}`);
    const driven: Driven[] = [];
    for (let k = 0; k < (options.segments ?? 4); k++) {
      const name = `crash ${k}`;
      const random = rng((options.seed * 31 + k + 1) >>> 0);
      driven.push({
        name,
        id: await create(name, SegmentType.STATIC),
        random,
        members: new Set(),
        version: 0,
        log: [],
        inDoubt: undefined,
      });
    }
    const excluded = rng((options.seed ^ 0x5eed) >>> 0);
    const exclusionIds = universe.filter(() => excluded() < 0.3);
    const exclusionId = await create("crash exclusion", SegmentType.STATIC);
    const filled = await clients.segments.addMembers({ segmentId: exclusionId, userIds: exclusionIds });
    const everyoneId = await create("crash everyone", SegmentType.EVERYONE);
    return {
      universe,
      ops: options.ops ?? OP_KINDS,
      driven,
      exclusion: { id: exclusionId, members: new Set(exclusionIds), version: Number(filled.version) },
      everyoneId,
    };
  } finally {
    clients.close();
  }
}

/** Starts one loop per segment, SIGKILLs the service after `delayMs`, and waits for every loop to stop. */
async function driveUntilKilled(service: ServiceProcess, world: World, delayMs: number, report: CrashReport, kill: number) {
  const clients = connect(service.address);
  const killed = { now: false };
  const loops = world.driven.map((segment) => drive(clients, world, segment, killed, report, kill));
  await new Promise((resolve) => setTimeout(resolve, delayMs));
  // Raised before the signal: no loop issues a call once the kill is decided.
  killed.now = true;
  service.child.kill("SIGKILL");
  await service.exited;
  await Promise.all(loops);
  clients.close();
}

/** Issues one call at a time on one segment until the kill cuts one (or the service misbehaves). */
async function drive(clients: Clients, world: World, segment: Driven, killed: { now: boolean }, report: CrashReport, kill: number) {
  while (!killed.now) {
    const op = nextOp(segment, world);
    const next = apply(op, segment.members, world);
    const answer = await call(clients, world, segment, op).then(
      (response) => ({ response }),
      (error: unknown) => ({ error: error as ServiceError }),
    );
    if ("error" in answer) {
      const { code, details } = answer.error;
      if (killed.now && CUT_CODES.includes(code)) {
        segment.inDoubt = op;
        const name = GrpcStatus[code] ?? String(code);
        report.cutCodes[name] = (report.cutCodes[name] ?? 0) + 1;
      } else {
        report.violations.push(
          `kill ${kill}, ${segment.name}: ${describeOp(op)} failed with code ${code} (${details}) while the service was up`,
        );
        // Whether it applied is unknown; let the restart decide, as for a cut call.
        segment.inDoubt = op;
      }
      return;
    }
    const changed = !sameSet(next, segment.members);
    const version = segment.version + (changed ? 1 : 0);
    const where = `kill ${kill}, ${segment.name}: ${describeOp(op)} at version ${segment.version} answered`;
    const state = mismatches(answer.response, { version, memberCount: next.size });
    if (state !== undefined) report.violations.push(`${where} ${state}`);
    const counters = mismatches(answer.response, expectedCounters(op, segment.members, next, world));
    if (counters !== undefined && report.wrongAnswers.length < 20) report.wrongAnswers.push(`${where} ${counters}`);
    report.acknowledged[op.kind]++;
    if (!changed) report.noops++;
    segment.members = next;
    segment.version = version;
    segment.log.push(`${describeOp(op)} → v${answer.response.version}`);
  }
}

/** Issues `op`; resolves with the response's numeric fields. */
async function call(clients: Clients, world: World, segment: Driven, op: Op): Promise<Record<string, unknown>> {
  const options = { deadline: new Date(Date.now() + CALL_TIMEOUT_MS) };
  const segmentId = segment.id;
  switch (op.kind) {
    case "add":
      return clients.segments.addMembers({ segmentId, userIds: op.ids }, options);
    case "remove":
      return clients.segments.removeMembers({ segmentId, userIds: op.ids }, options);
    case "import":
      return clients.segments.importMembers(importStream(segment, op.mode, op.chunks), options);
    case "subtract": {
      const subtractSegmentId = op.of === "exclusion" ? world.exclusion.id : world.everyoneId;
      return clients.segments.subtractSegment({ segmentId, subtractSegmentId }, options);
    }
  }
}

/** The import's messages, a few milliseconds apart so that kills also land mid-stream. */
async function* importStream(segment: Driven, mode: keyof typeof IMPORT_MODES, chunks: string[][]) {
  for (const [i, userIds] of chunks.entries()) {
    if (i > 0) await new Promise((resolve) => setTimeout(resolve, Math.floor(segment.random() * 4)));
    yield i === 0 ? { segmentId: segment.id, mode: IMPORT_MODES[mode], userIds } : { userIds };
  }
}

/** After a restart: settles each cut call from the version, then compares every segment with its model. */
async function verify(address: string, world: World, report: CrashReport, kill: number): Promise<void> {
  const clients = connect(address);
  try {
    for (const segment of world.driven) {
      const got = (await clients.segments.getSegment({ segmentId: segment.id })).segment;
      const version = Number(got?.version ?? -1);
      const op = segment.inDoubt;
      segment.inDoubt = undefined;
      let changes = false;
      if (op !== undefined) {
        const next = apply(op, segment.members, world);
        changes = !sameSet(next, segment.members);
        if (version === segment.version) report.inDoubt.notApplied++;
        else if (version === segment.version + 1 && changes) {
          report.inDoubt.applied++;
          segment.members = next;
          segment.version = version;
          segment.log.push(`${describeOp(op)} → v${version} (cut by kill ${kill}, applied)`);
        }
      }
      const where = `after kill ${kill}, ${segment.name}`;
      const history = () =>
        `; in doubt: ${op === undefined ? "nothing" : describeOp(op)}; last acknowledged: ${segment.log.slice(-3).join("; ")}`;
      if (version !== segment.version) {
        report.violations.push(`${where}: version ${version}, expected ${segment.version}${changes ? " or one more" : ""}${history()}`);
        continue;
      }
      if (Number(got?.memberCount ?? -1) !== segment.members.size)
        report.violations.push(`${where}: member_count ${got?.memberCount}, expected ${segment.members.size}${history()}`);
      const problem = await compareMembers(clients, world.universe, segment.id, segment.members, segment.version);
      if (problem !== undefined) report.violations.push(`${where}: ${problem}${history()}`);
    }
    const { exclusion } = world;
    const count = (await clients.segments.getSegment({ segmentId: exclusion.id })).segment?.memberCount;
    const problem = await compareMembers(clients, world.universe, exclusion.id, exclusion.members, exclusion.version);
    if (problem !== undefined || Number(count) !== exclusion.members.size)
      report.violations.push(
        `after kill ${kill}, the exclusion segment (never changed since set-up): ${problem ?? `member_count ${count}`}`,
      );
  } finally {
    clients.close();
  }
}

/** BatchCheckMembership over the whole universe against the model; a description of any difference. */
async function compareMembers(clients: Clients, universe: string[], segmentId: string, members: Set<string>, version: number) {
  const answer = await clients.membership.batchCheckMembership({ segmentId, userIds: universe });
  const missing = universe.filter((id, i) => members.has(id) && answer.members[i] !== true);
  const extra = universe.filter((id, i) => !members.has(id) && answer.members[i] === true);
  const problems: string[] = [];
  if (answer.members.length !== universe.length) problems.push(`${answer.members.length} answers for ${universe.length} ids`);
  if (Number(answer.version) !== version) problems.push(`BatchCheckMembership at version ${answer.version}, expected ${version}`);
  if (missing.length > 0) problems.push(`${missing.length} acknowledged members missing (${missing.slice(0, 5).join(", ")})`);
  if (extra.length > 0) problems.push(`${extra.length} members never acknowledged (${extra.slice(0, 5).join(", ")})`);
  return problems.length === 0 ? undefined : problems.join("; ");
}

/** The next call for `segment`, from its own seeded stream. */
function nextOp(segment: Driven, world: World): Op {
  const { random } = segment;
  const kind = pickKind(random, world.ops);
  // An empty segment has no members to pick: draw from the universe instead.
  const members = () => (segment.members.size === 0 ? world.universe : [...segment.members]);
  const count = (max: number) => 1 + Math.floor(random() * max);
  switch (kind) {
    case "add":
      // Now and then only current members: a call that changes nothing must write no version.
      return { kind, ids: sample(random, random() < 0.1 ? members() : world.universe, count(200)) };
    case "remove":
      return { kind, ids: sample(random, random() < 0.5 ? members() : world.universe, count(200)) };
    case "import": {
      const mode = random() < 0.4 ? "ADD" : random() < 0.5 ? "REMOVE" : "REPLACE";
      const pool = mode === "REMOVE" && random() < 0.5 ? members() : world.universe;
      const chunks = Array.from({ length: 2 + Math.floor(random() * 4) }, () => sample(random, pool, count(300)));
      return { kind, mode, chunks };
    }
    case "subtract":
      return { kind, of: random() < 0.75 ? "exclusion" : "everyone" };
  }
}

/** One of `ops`, weighted: subtracting is rarer, as it often empties the segment. */
function pickKind(random: () => number, ops: readonly OpKind[]): OpKind {
  const weights: Record<OpKind, number> = { add: 3, remove: 3, import: 3, subtract: 1 };
  let pick = random() * ops.reduce((sum, kind) => sum + weights[kind], 0);
  for (const kind of ops) {
    pick -= weights[kind];
    if (pick < 0) return kind;
  }
  return ops[0] ?? "add";
}

/** `n` ids drawn from `pool` with replacement (duplicates are part of the contract). */
function sample(random: () => number, pool: string[], n: number): string[] {
  return Array.from({ length: n }, () => pool[Math.floor(random() * pool.length)] as string);
}

/** The membership after `op`, as the contract defines it. */
function apply(op: Op, members: Set<string>, world: World): Set<string> {
  switch (op.kind) {
    case "add":
      return new Set([...members, ...op.ids]);
    case "remove":
      return without(members, new Set(op.ids));
    case "import": {
      const ids = new Set(op.chunks.flat());
      if (op.mode === "ADD") return new Set([...members, ...ids]);
      if (op.mode === "REMOVE") return without(members, ids);
      return ids;
    }
    case "subtract":
      // Every member is a known user, so EVERYONE takes them all.
      return op.of === "everyone" ? new Set() : without(members, world.exclusion.members);
  }
}

/** The fields of `response` that differ from `expected`, described; undefined when none do. */
function mismatches(response: Record<string, unknown>, expected: Record<string, number>): string | undefined {
  const wrong = Object.entries(expected).filter(([field, value]) => Number(response[field] ?? -1) !== value);
  if (wrong.length === 0) return undefined;
  return wrong.map(([field, value]) => `${field} ${response[field]} (expected ${value})`).join(", ");
}

/** The counters the response must carry besides version and member_count. */
function expectedCounters(op: Op, before: Set<string>, after: Set<string>, world: World): Record<string, number> {
  const added = [...after].filter((id) => !before.has(id)).length;
  const removed = before.size - (after.size - added);
  switch (op.kind) {
    case "add":
      return { added, unchanged: new Set(op.ids).size - added };
    case "remove":
      return { removed, unchanged: new Set(op.ids).size - removed };
    case "import":
      return { added, removed, unchanged: new Set(op.chunks.flat()).size - (op.mode === "REMOVE" ? removed : added), invalid: 0 };
    case "subtract":
      return { removed, subtractedVersion: op.of === "exclusion" ? world.exclusion.version : 0 };
  }
}

function without(members: Set<string>, gone: Set<string>): Set<string> {
  return new Set([...members].filter((id) => !gone.has(id)));
}

function sameSet(a: Set<string>, b: Set<string>): boolean {
  return a.size === b.size && [...a].every((id) => b.has(id));
}

function describeOp(op: Op): string {
  switch (op.kind) {
    case "add":
    case "remove":
      return `${op.kind} ${op.ids.length} ids (${op.ids.slice(0, 3).join(", ")}…)`;
    case "import":
      return `import ${op.mode} of ${op.chunks.length} chunks, ${op.chunks.flat().length} ids`;
    case "subtract":
      return `subtract ${op.of}`;
  }
}
