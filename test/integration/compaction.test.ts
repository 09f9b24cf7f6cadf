/**
 * Compaction and retention with a fake clock: snapshots bound the replay at start-up, history
 * older than the retention period is pruned down to the base it rebuilds from, and every version
 * still retained can be rebuilt exactly.
 */
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { KeyedMutex } from "../../src/control/keyed-mutex.js";
import { FailedPreconditionError } from "../../src/errors.js";
import { Compactor } from "../../src/service/compaction.js";
import { MemberService } from "../../src/service/member-service.js";
import { SegmentService } from "../../src/service/segment-service.js";
import { loadState, type SegmentState } from "../../src/service/segment-state.js";
import { UserRegistry } from "../../src/service/user-registry.js";
import { membershipAt } from "../../src/service/versions.js";
import type { Database } from "../../src/store/database.js";
import { migrate } from "../../src/store/migrate.js";
import { SegmentStore } from "../../src/store/segment-store.js";
import { UserStore } from "../../src/store/user-store.js";
import { NOBODY } from "../support/actor.js";
import { STORES, type TestStore } from "../support/stores.js";

const DAY = 86_400_000;
const log = pino({ level: "silent" });

describe.each(STORES)("compaction on $name", (kind) => {
  let store: TestStore;
  let db: Database;
  let now = new Date("2026-01-01T00:00:00Z");
  const clock = () => now;

  beforeAll(async () => {
    store = await kind.create();
    db = await openDatabase(loadConfig(store.env), log);
    await migrate(db);
  });
  afterAll(async () => {
    await db.close();
    await store.drop();
  });

  const services = (state: SegmentState) => {
    const segmentStore = new SegmentStore(db);
    const locks = new KeyedMutex();
    return {
      segmentStore,
      segments: new SegmentService({ state, store: segmentStore, clock, locks }),
      members: new MemberService({
        state,
        store: segmentStore,
        users: new UserRegistry(new UserStore(db), state.directory),
        clock,
        locks,
        maxIdsPerCall: 1_000,
      }),
      compactor: new Compactor({
        state,
        store: segmentStore,
        clock,
        log,
        policy: { maxChanges: 3, minBytes: 1 << 20, retentionMs: 30 * DAY },
      }),
    };
  };

  it("snapshots after the threshold, prunes past retention, and rebuilds what it keeps", async () => {
    let state = await loadState(new SegmentStore(db), new UserStore(db));
    let s = services(state);
    const { id } = await s.segments.createSegment(
      { name: "Compacted", description: "", type: "STATIC", query: null, schedule: null },
      NOBODY,
    );
    const expected: string[][] = [[]];
    for (let v = 1; v <= 5; v++) {
      await s.members.addMembers(id, [`m${v}`]);
      expected.push(Array.from({ length: v }, (_, i) => `m${i + 1}`));
    }
    expect(await s.compactor.runOnce()).toEqual({ snapshots: 1, pruned: 0 });
    expect(await s.compactor.runOnce()).toEqual({ snapshots: 0, pruned: 0 });

    // 40 days on, two more versions; the snapshot at v5 is now older than the retention period.
    now = new Date(now.getTime() + 40 * DAY);
    await s.members.removeMembers(id, ["m1"]);
    await s.members.addMembers(id, ["m6"]);
    expected.push(["m2", "m3", "m4", "m5"], ["m2", "m3", "m4", "m5", "m6"]);
    expect(await s.compactor.runOnce()).toEqual({ snapshots: 0, pruned: 1 });

    const segment = s.segments.getSegment(id);
    const current = state.bitmaps.get(id);
    const names = (uids: number[]) => uids.map((uid) => state.directory.externalId(uid)).sort();
    for (const v of [5, 6, 7]) {
      expect(names((await membershipAt(s.segmentStore, segment, current, v, "v")).toArray())).toEqual(expected[v]);
    }
    await expect(membershipAt(s.segmentStore, segment, current, 4, "v")).rejects.toThrow(FailedPreconditionError);
    await expect(membershipAt(s.segmentStore, segment, current, 4, "v")).rejects.toThrow("the oldest retained version is 5");

    // Start-up from the pruned log: snapshot v5 + two changes.
    state = await loadState(new SegmentStore(db), new UserStore(db));
    s = services(state);
    expect(state.segments.get(id)).toMatchObject({ version: 7, memberCount: 5 });
    expect(names(state.bitmaps.get(id).toArray())).toEqual(expected[7]);
    expect(state.unsnapshotted.get(id)).toMatchObject({ count: 2 });
  });
});
