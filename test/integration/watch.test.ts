/**
 * The change feed and replica loading (issue 10): WatchMembership replays retained history and
 * then follows live changes with every version exactly once — across the replay→live handoff,
 * reconnects and a server restart — in both delta formats; GetSegmentBitmap and ResolveUserIds
 * give a replica the bitmap and uids it answers from — on both stores.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { type ServiceError, status } from "@grpc/grpc-js";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { KeyedMutex } from "../../src/control/keyed-mutex.js";
import { ResourceExhaustedError, UnavailableError } from "../../src/errors.js";
import { ChangeFeed, type FeedBound } from "../../src/feed/change-feed.js";
import type { WatchMessage } from "../../src/feed/delta-messages.js";
import { MembershipWatcher } from "../../src/feed/watch.js";
import {
  DeltaFormat,
  type GetSegmentBitmapResponse,
  type WatchMembershipRequestSchema,
  type WatchMembershipResponse,
} from "../../src/gen/segments/v1/membership_service_pb.js";
import { type QuerySchema, SegmentType } from "../../src/gen/segments/v1/segment_pb.js";
import { ImportMode } from "../../src/gen/segments/v1/segment_service_pb.js";
import { RoaringBitmap32 } from "../../src/index/roaring.js";
import { MemberService } from "../../src/service/member-service.js";
import { SegmentService } from "../../src/service/segment-service.js";
import { loadState } from "../../src/service/segment-state.js";
import { UserRegistry } from "../../src/service/user-registry.js";
import type { Database } from "../../src/store/database.js";
import { migrate } from "../../src/store/migrate.js";
import { SegmentStore } from "../../src/store/segment-store.js";
import { UserStore } from "../../src/store/user-store.js";
import { NOBODY } from "../support/actor.js";
import { startService, type TestService, useService } from "../support/service.js";
import { failure } from "../support/status.js";
import { STORES, type TestStore } from "../support/stores.js";

type WatchRequest = MessageInitShape<typeof WatchMembershipRequestSchema>;
const DAY = 86_400_000;
const ids = (prefix: string, from: number, to: number) => Array.from({ length: to - from }, (_, i) => `${prefix}${from + i}`);
const sql = (value: string): MessageInitShape<typeof QuerySchema> => ({ kind: { case: "sql", value } });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A watch stream read in the background. */
interface Watch {
  readonly messages: WatchMembershipResponse[];
  /** Resolves with the stream's error (undefined if it ended cleanly). */
  readonly ended: Promise<ServiceError | undefined>;
  until(done: () => boolean): Promise<void>;
  cancel(): void;
}

/** Opens a watch; with `cancelAfter`, cancels it right after that many messages. */
function startWatch(service: TestService, request: WatchRequest, cancelAfter = Number.POSITIVE_INFINITY): Watch {
  const controller = new AbortController();
  const messages: WatchMembershipResponse[] = [];
  let error: ServiceError | undefined;
  const ended = (async () => {
    try {
      for await (const message of service.membership.watchMembership(request, { signal: controller.signal })) {
        if (controller.signal.aborted) break;
        messages.push(message);
        if (messages.length >= cancelAfter) controller.abort();
      }
    } catch (e: unknown) {
      if (!controller.signal.aborted) error = e as ServiceError;
    }
    return error;
  })();
  return {
    messages,
    ended,
    cancel: () => controller.abort(),
    until: async (done) => {
      while (!done()) {
        if (error !== undefined) throw error;
        if (controller.signal.aborted) throw new Error("the watch was cancelled first");
        await sleep(10);
      }
    },
  };
}

/** One version as received: its messages joined. */
interface Received {
  segmentId: string;
  version: number;
  entered: string[];
  left: string[];
  memberCount: number;
  messages: number;
}

/**
 * The complete versions in `messages`, checking that a version's messages are consecutive, carry
 * at most 10,000 ids each, have a time, and that only the last says version_complete. A trailing
 * incomplete version (a cancelled stream) is left out.
 */
function versionsOf(messages: readonly WatchMembershipResponse[]): Received[] {
  const out: Received[] = [];
  let open: Received | undefined;
  for (const m of messages) {
    if (open === undefined) {
      open = { segmentId: m.segmentId, version: Number(m.version), entered: [], left: [], memberCount: 0, messages: 0 };
    }
    expect([m.segmentId, Number(m.version)]).toEqual([open.segmentId, open.version]);
    expect(m.enteredUserIds.length + m.leftUserIds.length).toBeLessThanOrEqual(10_000);
    expect(m.time).toBeDefined();
    open.entered.push(...m.enteredUserIds);
    open.left.push(...m.leftUserIds);
    open.memberCount = Number(m.memberCount);
    open.messages++;
    if (m.versionComplete) {
      open.entered.sort();
      open.left.sort();
      out.push(open);
      open = undefined;
    }
  }
  return out;
}

/** Each segment's membership after every version, as the test expects it (index = version). */
class Model {
  private readonly history = new Map<string, Set<string>[]>();

  /** Records the membership `segmentId` has after its next version. */
  commit(segmentId: string, members: Iterable<string>): void {
    const versions = this.history.get(segmentId) ?? [new Set()];
    versions.push(new Set(members));
    this.history.set(segmentId, versions);
  }

  at(segmentId: string, version: number): Set<string> {
    return this.history.get(segmentId)?.[version] ?? new Set();
  }

  current(segmentId: string): Set<string> {
    const versions = this.history.get(segmentId) ?? [new Set()];
    return versions[versions.length - 1] as Set<string>;
  }

  version(segmentId: string): number {
    return (this.history.get(segmentId)?.length ?? 1) - 1;
  }

  /** What a watcher should have received for `version`. */
  expected(segmentId: string, version: number): Omit<Received, "messages"> {
    const before = this.at(segmentId, version - 1);
    const after = this.at(segmentId, version);
    return {
      segmentId,
      version,
      entered: [...after].filter((id) => !before.has(id)).sort(),
      left: [...before].filter((id) => !after.has(id)).sort(),
      memberCount: after.size,
    };
  }
}

/** Checks `received` is exactly versions from+1 … to of `segmentId`, in order, each as the model says. */
function expectVersions(model: Model, segmentId: string, received: readonly Received[], from: number, to = model.version(segmentId)): void {
  const mine = received.filter((r) => r.segmentId === segmentId).map(({ messages: _, ...rest }) => rest);
  const expected = Array.from({ length: to - from }, (_, i) => model.expected(segmentId, from + 1 + i));
  expect(mine).toEqual(expected);
}

describe.each(STORES)("WatchMembership on $name", (kind) => {
  const t = useService(kind);
  const model = new Model();

  const active = async (name: string, type = SegmentType.STATIC, query?: MessageInitShape<typeof QuerySchema>) => {
    const id = (await t.service.segments.createSegment({ name, type, ...(query === undefined ? {} : { query }) })).segment?.id ?? "";
    await t.service.segments.activateSegment({ segmentId: id });
    return id;
  };
  const add = async (id: string, userIds: string[]) => {
    await t.service.segments.addMembers({ segmentId: id, userIds });
    model.commit(id, [...model.current(id), ...userIds]);
  };
  const remove = async (id: string, userIds: string[]) => {
    await t.service.segments.removeMembers({ segmentId: id, userIds });
    model.commit(
      id,
      [...model.current(id)].filter((u) => !userIds.includes(u)),
    );
  };
  const replace = async (id: string, userIds: string[]) => {
    await t.service.segments.importMembers([{ segmentId: id, mode: ImportMode.REPLACE, userIds }]);
    model.commit(id, userIds);
  };

  it("replays history from version 0, then follows live changes: every version once, in commit order", async () => {
    const a = await active("Replayed A");
    const b = await active("Replayed B");
    const d = await active("Replayed D", SegmentType.DYNAMIC, sql("SELECT 'q' || g AS user_id FROM generate_series(1, 3) g"));
    await add(a, ["a1", "a2", "a3"]);
    await remove(a, ["a1"]);
    await add(b, ["b1", "a2"]);
    await t.service.segments.evaluateSegment({ segmentId: d });
    model.commit(d, ["q1", "q2", "q3"]);

    // D is not in from_versions: it starts at its current version (1) and gets only later ones.
    const watch = startWatch(t.service, { segmentIds: [a, b, d], fromVersions: { [a]: 0n, [b]: 0n } });
    await watch.until(() => versionsOf(watch.messages).length === 3);
    await add(a, ["a4"]);
    await replace(a, ["a2", "a5", "a6"]);
    await t.service.segments.subtractSegment({ segmentId: a, subtractSegmentId: b });
    model.commit(
      a,
      [...model.current(a)].filter((u) => !model.current(b).has(u)),
    );
    await t.service.segments.rollbackSegment({ segmentId: a, toVersion: 2n });
    model.commit(a, model.at(a, 2));
    await remove(b, ["b1"]);
    await t.service.segments.updateSegment({
      segmentId: d,
      segment: { query: sql("SELECT 'q' || g AS user_id FROM generate_series(2, 5) g") },
      updateMask: { paths: ["query"] },
    });
    await t.service.segments.evaluateSegment({ segmentId: d });
    model.commit(d, ["q2", "q3", "q4", "q5"]);

    await watch.until(() => versionsOf(watch.messages).some((r) => r.segmentId === d && r.version === 2));
    watch.cancel();
    const received = versionsOf(watch.messages);
    const order = [a, a, b, a, a, a, a, b, d];
    expect(received.map((r) => [r.segmentId, r.version])).toEqual(order.map((id, i) => [id, [1, 2, 1, 3, 4, 5, 6, 2, 2][i]]));
    expectVersions(model, a, received, 0);
    expectVersions(model, b, received, 0);
    expectVersions(model, d, received, 1);
  });

  it("splits a large change into messages of at most 10,000 ids; ROARING sends one message per version", async () => {
    const s = await active("Large changes");
    const live = startWatch(t.service, { segmentIds: [s] });
    const liveRoaring = startWatch(t.service, { segmentIds: [s], deltaFormat: DeltaFormat.ROARING });
    const big = ids("big-", 0, 25_000);
    await add(s, big);
    await replace(s, ids("rep-", 0, 15_000));

    await live.until(() => versionsOf(live.messages).at(-1)?.version === 2);
    const received = versionsOf(live.messages);
    expectVersions(model, s, received, 0);
    expect(received.map((r) => r.messages)).toEqual([3, 4]);
    expect(live.messages.map((m) => m.versionComplete)).toEqual([false, false, true, false, false, false, true]);

    // A replica's view: uids as ResolveUserIds gives them.
    const uidsOf = async (userIds: string[]) => {
      const out: number[] = [];
      for (let i = 0; i < userIds.length; i += 10_000) {
        const { uids } = await t.service.membership.resolveUserIds({ userIds: userIds.slice(i, i + 10_000) });
        out.push(...uids.map(Number));
      }
      return new RoaringBitmap32(out.sort((x, y) => x - y));
    };
    const expectRoaring = async (messages: readonly WatchMembershipResponse[]) => {
      expect(messages.map((m) => [Number(m.version), m.versionComplete, m.enteredUserIds.length, m.leftUserIds.length])).toEqual([
        [1, true, 0, 0],
        [2, true, 0, 0],
      ]);
      for (const [i, m] of messages.entries()) {
        const { entered, left } = model.expected(s, i + 1);
        expect(RoaringBitmap32.deserialize(m.enteredRoaring, true).isEqual(await uidsOf(entered))).toBe(true);
        expect(RoaringBitmap32.deserialize(m.leftRoaring, true).isEqual(await uidsOf(left))).toBe(true);
        expect(Number(m.memberCount)).toBe(model.at(s, i + 1).size);
      }
    };
    await liveRoaring.until(() => liveRoaring.messages.at(-1)?.version === 2n);
    await expectRoaring(liveRoaring.messages);
    const replayed = startWatch(t.service, { segmentIds: [s], fromVersions: { [s]: 0n }, deltaFormat: DeltaFormat.ROARING });
    await replayed.until(() => replayed.messages.at(-1)?.version === 2n);
    await expectRoaring(replayed.messages);
    for (const w of [live, liveRoaring, replayed]) w.cancel();
  });

  it("hands over from replay to live without gap or duplicate while changes keep coming", async () => {
    const s = await active("Busy");
    const watches: Watch[] = [];
    // Watches open from version 0 while the writer commits, so each replays some versions and
    // buffers others that arrive during its replay.
    for (let v = 1; v <= 40; v++) {
      const write = add(s, [`busy-${v}`]);
      if (v % 10 === 0) watches.push(startWatch(t.service, { segmentIds: [s], fromVersions: { [s]: 0n } }));
      await write;
    }
    for (const watch of watches) {
      await watch.until(() => versionsOf(watch.messages).at(-1)?.version === 40);
      expectVersions(model, s, versionsOf(watch.messages), 0);
      watch.cancel();
    }
  });

  it("resumes from the last complete version after a cancel and after a server restart: every change exactly once", async () => {
    const s = await active("Resumed");
    const other = await active("Resumed other");
    await add(s, ["r1"]);
    await add(s, ["r2", "r3"]);
    await add(s, ids("r-big-", 0, 25_000));
    await add(other, ["o1"]);

    const complete: Received[] = [];
    const lastComplete = (received: Received[], id: string, fallback: number) =>
      received.filter((r) => r.segmentId === id).at(-1)?.version ?? fallback;

    // Cut in the middle of version 3 (its second message of three).
    const first = startWatch(t.service, { segmentIds: [s, other], fromVersions: { [s]: 0n, [other]: 0n } }, 4);
    await first.ended;
    complete.push(...versionsOf(first.messages));
    expect(complete.map((r) => r.version)).toEqual([1, 2]);

    // Resume while a writer keeps changing both segments; cut again mid-way.
    const second = startWatch(
      t.service,
      { segmentIds: [s, other], fromVersions: { [s]: BigInt(lastComplete(complete, s, 0)), [other]: 0n } },
      6,
    );
    for (let i = 0; i < 10; i++) {
      if (i % 3 === 0) await remove(s, [`r-big-${i}`]);
      else await add(i % 2 === 0 ? s : other, [`w-${i}`]);
    }
    await second.ended;
    complete.push(...versionsOf(second.messages));

    // Restart on the same store; more changes while nobody watches, then resume.
    await t.service.stop();
    t.service = await startService(t.store);
    await add(s, ["after-restart"]);
    await remove(other, ["o1"]);
    const third = startWatch(t.service, {
      segmentIds: [s, other],
      fromVersions: { [s]: BigInt(lastComplete(complete, s, 0)), [other]: BigInt(lastComplete(complete, other, 0)) },
    });
    const reached = (id: string) => versionsOf(third.messages).some((r) => r.segmentId === id && r.version === model.version(id));
    await third.until(() => reached(s) && reached(other));
    complete.push(...versionsOf(third.messages));
    third.cancel();
    expectVersions(model, s, complete, 0);
    expectVersions(model, other, complete, 0);
  });

  it("refuses DRAFT, ARCHIVED and EVERYONE segments and bad requests", async () => {
    const draft = (await t.service.segments.createSegment({ name: "Draft watch", type: SegmentType.STATIC })).segment?.id ?? "";
    const archived = await active("Archived watch");
    await t.service.segments.archiveSegment({ segmentId: archived });
    const everyone = await active("Everyone watch", SegmentType.EVERYONE);
    const ok = await active("Fine watch");
    const code = async (request: WatchRequest) => (await startWatch(t.service, request).ended)?.code;

    expect(await code({ segmentIds: [draft] })).toBe(status.FAILED_PRECONDITION);
    expect(await code({ segmentIds: [ok, archived] })).toBe(status.FAILED_PRECONDITION);
    expect(await code({ segmentIds: [everyone] })).toBe(status.FAILED_PRECONDITION);
    expect(await code({ segmentIds: ["0190d6a4-0000-7000-8000-000000000000"] })).toBe(status.NOT_FOUND);
    expect(await code({ segmentIds: ["not-a-uuid"] })).toBe(status.INVALID_ARGUMENT);
    expect(await code({ segmentIds: [] })).toBe(status.INVALID_ARGUMENT);
    expect(await code({ segmentIds: [ok], fromVersions: { [draft]: 0n } })).toBe(status.INVALID_ARGUMENT);
    expect(await code({ segmentIds: [ok], fromVersions: { [ok]: 5n } })).toBe(status.INVALID_ARGUMENT);
    expect(await code({ segmentIds: [ok], deltaFormat: 7 as DeltaFormat })).toBe(status.INVALID_ARGUMENT);

    expect((await failure(collect(t.service.membership.getSegmentBitmap({ segmentId: draft })))).code).toBe(status.FAILED_PRECONDITION);
    expect((await failure(collect(t.service.membership.getSegmentBitmap({ segmentId: archived })))).code).toBe(status.FAILED_PRECONDITION);
    const all = await collect(t.service.membership.getSegmentBitmap({ segmentId: everyone }));
    expect(all).toHaveLength(1);
    expect(all[0]).toMatchObject({ everyone: true, complete: true, version: 0n });
    expect(all[0]?.bitmap).toHaveLength(0);
  });

  it("keeps a watch through PAUSED and ends it when a watched segment is archived", async () => {
    const s = await active("Archived while watched");
    const other = await active("Watched beside it");
    const watch = startWatch(t.service, { segmentIds: [s, other] });
    await add(s, ["p1"]);
    await t.service.segments.pauseSegment({ segmentId: s });
    await add(s, ["p2"]);
    await watch.until(() => versionsOf(watch.messages).at(-1)?.version === 2);
    await t.service.segments.archiveSegment({ segmentId: s });
    const error = await watch.ended;
    expect(error?.code).toBe(status.FAILED_PRECONDITION);
    expect(error?.details).toContain("ARCHIVED");
    expectVersions(model, s, versionsOf(watch.messages), 0);
  });

  it("GetSegmentBitmap of a 300,000-member segment reassembles to its exact uids; ResolveUserIds agrees with the hot path", async () => {
    const s = await active("Bitmap");
    const members = ids("bm-", 0, 300_000);
    const outsiders = ids("out-", 0, 1_000);
    await t.service.segments.importMembers(
      [0, 100_000, 200_000].map((from) => ({ segmentId: s, mode: ImportMode.ADD, userIds: members.slice(from, from + 100_000) })),
    );
    await add(await active("Outsiders"), outsiders);

    const messages = await collect(t.service.membership.getSegmentBitmap({ segmentId: s }));
    expect(messages.map((m) => m.complete)).toEqual(messages.map((_, i) => i === messages.length - 1));
    expect(new Set(messages.map((m) => m.version))).toEqual(new Set([1n]));
    expect(messages.every((m) => !m.everyone && !m.stale && m.versionTime !== undefined)).toBe(true);
    const bitmap = RoaringBitmap32.deserialize(Buffer.concat(messages.map((m) => m.bitmap)), true);
    expect(bitmap.size).toBe(300_000);
    const uids: number[] = [];
    for (let i = 0; i < members.length; i += 100_000) {
      uids.push(...(await t.service.membership.resolveUserIds({ userIds: members.slice(i, i + 100_000) })).uids.map(Number));
    }
    expect(bitmap.isEqual(new RoaringBitmap32(uids.sort((x, y) => x - y)))).toBe(true);

    // Sampled users: bitmap.has(uid) is what the hot path answers; unknown users have uid −1.
    const sample = [...members.filter((_, i) => i % 600 === 0), ...outsiders.slice(0, 500), "never-seen-1", "never-seen-2"];
    const resolved = (await t.service.membership.resolveUserIds({ userIds: sample })).uids.map(Number);
    expect(resolved.slice(-2)).toEqual([-1, -1]);
    const answers = (await t.service.membership.batchCheckMembership({ segmentId: s, userIds: sample })).members;
    expect(resolved.map((uid) => uid >= 0 && bitmap.has(uid))).toEqual(answers);
    for (const i of [0, 10, sample.length - 3, sample.length - 1]) {
      const [check] = (await t.service.membership.checkMembership({ userId: sample[i] as string, segmentIds: [s] })).results;
      expect(check?.member).toBe(answers[i]);
    }
    for (const bad of [[], [""], ["x\u0000"], ["y".repeat(257)]]) {
      expect((await failure(t.service.membership.resolveUserIds({ userIds: bad }))).code).toBe(status.INVALID_ARGUMENT);
    }
  });
});

describe.each(STORES)("GetSegmentBitmap under a small MAX_MESSAGE_BYTES on $name", (kind) => {
  const t = useService(kind, { MAX_MESSAGE_BYTES: "4096" });

  it("splits the bitmap into chunks below the limit that reassemble to the exact uids", async () => {
    const id = (await t.service.segments.createSegment({ name: "Chunked", type: SegmentType.STATIC })).segment?.id ?? "";
    await t.service.segments.activateSegment({ segmentId: id });
    const members = ids("chunk-", 0, 20_000);
    const batches = Array.from({ length: 100 }, (_, i) => members.slice(i * 200, (i + 1) * 200));
    await t.service.segments.importMembers(batches.map((userIds) => ({ segmentId: id, mode: ImportMode.ADD, userIds })));
    const messages = await collect(t.service.membership.getSegmentBitmap({ segmentId: id }));
    expect(messages.length).toBeGreaterThan(1);
    expect(messages.every((m) => m.bitmap.byteLength < 4096)).toBe(true);
    expect(messages.map((m) => m.complete)).toEqual(messages.map((_, i) => i === messages.length - 1));
    const bitmap = RoaringBitmap32.deserialize(Buffer.concat(messages.map((m) => m.bitmap)), true);
    const uids: number[] = [];
    for (const userIds of batches) uids.push(...(await t.service.membership.resolveUserIds({ userIds })).uids.map(Number));
    expect(bitmap.isEqual(new RoaringBitmap32(uids.sort((x, y) => x - y)))).toBe(true);
  });
});

describe.each(STORES)("WatchMembership history retention on $name", (kind) => {
  let store: TestStore;
  let service: TestService;
  let now = Date.parse("2026-01-01T00:00:00Z");

  beforeAll(async () => {
    store = await kind.create();
    const env = { SNAPSHOT_EVERY_CHANGES: "2", HISTORY_RETENTION_DAYS: "1", COMPACTION_INTERVAL_MS: "100" };
    service = await startService(store, env, undefined, () => new Date(now));
  });
  afterAll(async () => {
    await service.stop();
    await store.drop();
  });

  it("refuses a cursor older than the retained history with FAILED_PRECONDITION naming the oldest version", async () => {
    const id = (await service.segments.createSegment({ name: "Pruned", type: SegmentType.STATIC })).segment?.id ?? "";
    await service.segments.activateSegment({ segmentId: id });
    for (let v = 1; v <= 3; v++) await service.segments.addMembers({ segmentId: id, userIds: [`m${v}`] });
    // Compaction snapshots after two changes; once that snapshot is older than a day, older history goes.
    for (;;) {
      now += DAY;
      const diff = await service.segments.diffMembership({ segmentId: id, fromVersion: 0n, toVersion: 0n }).then(
        () => undefined,
        (e: unknown) => e as ServiceError,
      );
      if (diff !== undefined) {
        expect(diff.code).toBe(status.FAILED_PRECONDITION);
        break;
      }
      await sleep(100);
    }
    const error = await startWatch(service, { segmentIds: [id], fromVersions: { [id]: 0n } }).ended;
    expect(error?.code).toBe(status.FAILED_PRECONDITION);
    const oldest = Number(/oldest retained version is (\d+)/.exec(error?.details ?? "")?.[1]);
    expect(oldest).toBeGreaterThanOrEqual(2);

    const resumed = startWatch(service, { segmentIds: [id], fromVersions: { [id]: BigInt(oldest) } });
    await service.segments.addMembers({ segmentId: id, userIds: ["m4"] });
    await resumed.until(() => versionsOf(resumed.messages).at(-1)?.version === 4);
    expect(versionsOf(resumed.messages).map((r) => r.version)).toEqual(Array.from({ length: 4 - oldest }, (_, i) => oldest + 1 + i));
    resumed.cancel();
  });
});

async function collect(stream: AsyncIterable<GetSegmentBitmapResponse>): Promise<GetSegmentBitmapResponse[]> {
  const out: GetSegmentBitmapResponse[] = [];
  for await (const message of stream) out.push(message);
  return out;
}

describe.each(STORES)("the change feed below gRPC on $name", (kind) => {
  let store: TestStore;
  let db: Database;

  beforeAll(async () => {
    store = await kind.create();
    db = await openDatabase(loadConfig(store.env), pino({ level: "silent" }));
    await migrate(db);
  });
  afterAll(async () => {
    await db.close();
    await store.drop();
  });

  /** A process's view of the shared store: its own memory, feed and watcher. */
  const processOn = async (bound?: FeedBound) => {
    const state = await loadState(new SegmentStore(db), new UserStore(db));
    const feed = new ChangeFeed(bound);
    state.listeners.add(feed);
    const deps = { state, store: new SegmentStore(db), clock: () => new Date(), locks: new KeyedMutex() };
    return {
      segments: new SegmentService(deps),
      members: new MemberService({ ...deps, users: new UserRegistry(new UserStore(db), state.directory), maxIdsPerCall: 1_000 }),
      watcher: new MembershipWatcher({ state, store: deps.store, feed, maxMessageBytes: 1 << 26 }),
    };
  };
  type Process = Awaited<ReturnType<typeof processOn>>;
  const activeSegment = async (p: Process, name: string) => {
    const { id } = await p.segments.createSegment({ name, description: "", type: "STATIC", query: null, schedule: null }, NOBODY);
    await p.segments.transition(id, "ActivateSegment", NOBODY);
    return id;
  };
  /** Watches `id` from `from`; `send` may hold a message back (a slow reader). */
  const watchFrom = (p: Process, id: string, from: number, send: (m: WatchMessage) => Promise<void> = async () => undefined) => {
    const messages: WatchMessage[] = [];
    const controller = new AbortController();
    const request = { segmentIds: [id], fromVersions: new Map([[id, from]]), format: "USER_IDS" as const };
    const ended = p.watcher
      .watch(
        request,
        async (m) => {
          await send(m);
          messages.push(m);
        },
        controller.signal,
      )
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    const until = async (version: number) => {
      while (messages.at(-1)?.version !== version) await sleep(10);
    };
    return { messages, ended, until, cancel: () => controller.abort() };
  };

  it("delivers versions another process committed, from the log, once memory catches up", async () => {
    const ours = await processOn();
    const id = await activeSegment(ours, "Caught up");
    await ours.members.addMembers(id, ["a"]);
    const watch = watchFrom(ours, id, 0);
    const other = await processOn();
    await other.members.addMembers(id, ["late"]);
    // Our next write finds the version moved and catches up; the retry lands on top.
    await expect(ours.members.addMembers(id, ["b"])).rejects.toThrow(UnavailableError);
    await ours.members.addMembers(id, ["b"]);
    await watch.until(3);
    watch.cancel();
    expect(watch.messages.map((m) => [m.version, m.entered, m.memberCount, m.complete])).toEqual([
      [1, ["a"], 1, true],
      [2, ["late"], 2, true],
      [3, ["b"], 3, true],
    ]);
  });

  it("ends a reader that falls too far behind live changes with RESOURCE_EXHAUSTED; it resumes from the log", async () => {
    const p = await processOn({ maxEvents: 5, maxBytes: 1 << 20 });
    const id = await activeSegment(p, "Slow reader");
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const slow = watchFrom(p, id, 0, () => held);
    for (let v = 1; v <= 10; v++) await p.members.addMembers(id, [`s${v}`]);
    release();
    const error = await slow.ended;
    expect(error).toBeInstanceOf(ResourceExhaustedError);
    expect(String(error)).toContain("reconnect with from_versions");
    // It held version 1 back, so that is all it completed.
    expect(slow.messages.map((m) => m.version)).toEqual([1]);

    const resumed = watchFrom(p, id, 1);
    await resumed.until(10);
    resumed.cancel();
    expect(resumed.messages.map((m) => [m.version, m.entered])).toEqual(Array.from({ length: 9 }, (_, i) => [i + 2, [`s${i + 2}`]]));
  });
});
