/**
 * The directory's persistence (src/store/user-store.ts, src/service/user-registry.ts) on both
 * stores: users of the old row-per-user table carried over by migration 0008 (gaps included),
 * new uids after them, one uid per id across the pending sets of one transaction, catch-up of
 * chunks another writer committed, and nothing left behind by a transaction that rolls back.
 */
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { openDatabase } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { NOT_FOUND, UserDirectory } from "../../src/index/user-directory.js";
import { PendingUsers, UserRegistry } from "../../src/service/user-registry.js";
import type { Database } from "../../src/store/database.js";
import { migrate } from "../../src/store/migrate.js";
import { UserStore } from "../../src/store/user-store.js";
import { STORES, type TestStore } from "../support/stores.js";

/** The ids `directory` does not know, pending, as a change gathers them. */
function pendingOf(directory: UserDirectory, ids: readonly string[]): PendingUsers {
  const pending = new PendingUsers(directory.uidBound);
  for (const id of ids) if (directory.lookup(id) === undefined) pending.add(id);
  return pending;
}

function pairs(directory: UserDirectory): [number, string][] {
  const out: [number, string][] = [];
  for (let uid = 0; uid < directory.uidBound; uid++) {
    const id = directory.externalId(uid);
    if (id !== undefined) out.push([uid, id]);
  }
  return out;
}

describe.each(STORES)("user chunks on $name", (kind) => {
  let store: TestStore;
  let db: Database;

  beforeEach(async () => {
    store = await kind.create();
    db = await openDatabase(loadConfig(store.env), pino({ level: "silent" }));
  });
  afterEach(async () => {
    await db.close();
    await store.drop();
  });

  it("carries the old users table over, gaps and all, and hands out uids after it", async () => {
    await migrate(db, 7);
    const legacy: [number, string][] = [
      [0, "alice"],
      [1, "用户-1"],
      [4, "bob"],
      [65_535, "edge"],
      [65_536, "next chunk"],
      [70_001, "last"],
    ];
    for (const [uid, id] of legacy) await db.query("INSERT INTO users (uid, external_id) VALUES ($1, $2)", [uid, id]);
    await migrate(db);

    const registry = new UserRegistry(new UserStore(db), new UserDirectory());
    // Gathered before the directory knew anyone: "bob" turns out to be known by the commit.
    const pending = pendingOf(registry.directory, ["bob", "carol"]);
    await registry.catchUp();
    expect(pairs(registry.directory)).toEqual(legacy);
    const { uids, created } = await db.transaction((tx) => registry.register(tx, [pending]));
    expect(Array.from(uids[0] ?? [])).toEqual([4, 70_002]);
    await registry.enter(created);
    expect(registry.directory.lookup("carol")).toBe(70_002);
  });

  it("gives an id several pending sets name one uid, and another registry catches up with them", async () => {
    await migrate(db);
    const ours = new UserRegistry(new UserStore(db), new UserDirectory());
    const first = await db.transaction((tx) => ours.register(tx, [pendingOf(ours.directory, ["a", "b"])]));
    // Gathered while "a" was still unknown; by their commit it has a uid.
    const sets = [pendingOf(ours.directory, ["c", "a", "d"]), pendingOf(ours.directory, ["d", "e", "c"])];
    await ours.enter(first.created);
    const { uids, created } = await db.transaction((tx) => ours.register(tx, sets));
    await ours.enter(created);
    expect(uids.map((u) => Array.from(u))).toEqual([
      [2, 0, 3],
      [3, 4, 2],
    ]);

    // A second writer that loaded nothing learns every user when it next assigns uids.
    const theirs = new UserRegistry(new UserStore(db), new UserDirectory());
    const late = await db.transaction((tx) => theirs.register(tx, [pendingOf(theirs.directory, ["e", "f"])]));
    expect(Array.from(late.uids[0] ?? [])).toEqual([4, 5]);
    await theirs.enter(late.created);
    await ours.catchUp();
    expect(pairs(theirs.directory)).toEqual(pairs(ours.directory));
    expect(pairs(ours.directory).map(([, id]) => id)).toEqual(["a", "b", "c", "d", "e", "f"]);
  });

  it("splits a large batch into bounded chunks and leaves nothing behind a rollback", async () => {
    await migrate(db);
    const registry = new UserRegistry(new UserStore(db), new UserDirectory());
    const ids = Array.from({ length: 150_000 }, (_, n) => `user_${n}`);
    await expect(
      db.transaction(async (tx) => {
        await registry.register(tx, [pendingOf(registry.directory, ids)]);
        throw new Error("rolled back");
      }),
    ).rejects.toThrow("rolled back");
    expect(await db.query("SELECT 1 FROM user_chunks")).toEqual([]);

    const { created } = await db.transaction((tx) => registry.register(tx, [pendingOf(registry.directory, ids)]));
    expect(created.map((chunk) => [chunk.firstUid, chunk.count])).toEqual([
      [0, 65_536],
      [65_536, 65_536],
      [131_072, 18_928],
    ]);
    await registry.enter(created);
    const reloaded = new UserRegistry(new UserStore(db), new UserDirectory());
    await reloaded.catchUp();
    expect(reloaded.directory.size).toBe(ids.length);
    for (const n of [0, 65_535, 65_536, 149_999]) expect(reloaded.directory.lookup(`user_${n}`)).toBe(n);
    expect(reloaded.directory.lookup("user_150000") ?? NOT_FOUND).toBe(NOT_FOUND);
  });

  it("finishes a doubling of the directory's table in the background once users stop arriving", async () => {
    await migrate(db);
    const registry = new UserRegistry(new UserStore(db), new UserDirectory());
    // The table doubles at its 91,751st user (0.7 × 2^17 slots); adds alone would move its old
    // slots over only in the next 32,768 adds.
    const ids = Array.from({ length: 92_000 }, (_, n) => `settle_${n}`);
    const { created } = await db.transaction((tx) => registry.register(tx, [pendingOf(registry.directory, ids)]));
    await registry.enter(created);
    expect(registry.directory.rehashing).toBe(true);
    const during = registry.directory.byteSize();
    await vi.waitFor(() => expect(registry.directory.rehashing).toBe(false));
    expect(registry.directory.byteSize()).toBeLessThan(during);
    expect(ids.map((id) => registry.directory.lookup(id))).toEqual(ids.map((_, n) => n));
    expect(registry.directory.lookup("settle_92000")).toBeUndefined();
  });

  it("loads at start-up exactly what was stored, ids COPY's text format escapes included", async () => {
    await migrate(db, 7);
    // A legacy gap, then every character COPY escapes, a lone backslash at each end, multi-byte
    // UTF-8 and 256-byte ids, across three chunks.
    await db.query("INSERT INTO users (uid, external_id) VALUES (0, 'legacy'), (3, 'after a gap')");
    await migrate(db);
    const hostile = ["a\\b", "tab\tand\nnewline", "\\", "x\\", "\b\f\r\v\u0001\u001f", "é用户😀", "z".repeat(256), "\\N"];
    const ids = [...hostile, ...Array.from({ length: 140_000 }, (_, n) => `bulk_${n}`)];
    const writer = new UserRegistry(new UserStore(db), new UserDirectory());
    await writer.catchUp();
    const { created } = await db.transaction((tx) => writer.register(tx, [pendingOf(writer.directory, ids)]));
    await writer.enter(created);

    const loaded = new UserRegistry(new UserStore(db), new UserDirectory());
    await loaded.load();
    expect(loaded.directory.size).toBe(ids.length + 2);
    expect(pairs(loaded.directory)).toEqual(pairs(writer.directory));
    for (const id of ids.slice(0, hostile.length)) expect(loaded.directory.lookup(id)).toBe(writer.directory.lookup(id));
  });
});
