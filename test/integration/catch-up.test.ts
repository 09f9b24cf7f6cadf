/**
 * A commit this process did not make (a killed predecessor's last COMMIT landing late, or another
 * writer) must not wedge a segment: the next write notices the version moved, memory catches up
 * from the store, and the retried call succeeds on top of the foreign change.
 */
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { KeyedMutex } from "../../src/control/keyed-mutex.js";
import { UnavailableError } from "../../src/errors.js";
import { MemberService } from "../../src/service/member-service.js";
import { SegmentService } from "../../src/service/segment-service.js";
import { loadState } from "../../src/service/segment-state.js";
import { UserRegistry } from "../../src/service/user-registry.js";
import type { Database } from "../../src/store/database.js";
import { migrate } from "../../src/store/migrate.js";
import { SegmentStore } from "../../src/store/segment-store.js";
import { UserStore } from "../../src/store/user-store.js";
import { NOBODY } from "../support/actor.js";
import { STORES, type TestStore } from "../support/stores.js";

describe.each(STORES)("catching up with a foreign commit on $name", (kind) => {
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

  const writer = async () => {
    const state = await loadState(new SegmentStore(db), new UserStore(db));
    const deps = { state, store: new SegmentStore(db), clock: () => new Date(), locks: new KeyedMutex() };
    return {
      state,
      segments: new SegmentService(deps),
      members: new MemberService({ ...deps, users: new UserRegistry(new UserStore(db), state.directory), maxIdsPerCall: 1_000 }),
    };
  };

  it("refuses the stale write once with UNAVAILABLE, then applies the retry on top", async () => {
    const ours = await writer();
    const { id } = await ours.segments.createSegment(
      { name: "Shared", description: "", type: "STATIC", query: null, schedule: null },
      NOBODY,
    );
    await ours.members.addMembers(id, ["a"]);
    // Another writer, loaded now, commits version 2 behind our back.
    const other = await writer();
    await other.members.addMembers(id, ["late1", "late2"]);

    await expect(ours.members.addMembers(id, ["b"])).rejects.toThrow(UnavailableError);
    const retried = await ours.members.addMembers(id, ["b"]);
    expect(retried).toMatchObject({ added: 1, version: 3, memberCount: 4 });
    const names = ours.state.bitmaps
      .get(id)
      .toArray()
      .map((uid) => ours.state.directory.externalId(uid))
      .sort();
    expect(names).toEqual(["a", "b", "late1", "late2"]);
  });
});
