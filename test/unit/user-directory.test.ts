import { describe, expect, it } from "vitest";
import { idHash, NOT_FOUND, UidRecords, UserDirectory } from "../../src/index/user-directory.js";

describe("UserDirectory", () => {
  it("maps ids to uids and back", () => {
    const directory = new UserDirectory();
    directory.add(0, "alice");
    directory.add(7, "bob");
    expect(directory.lookup("alice")).toBe(0);
    expect(directory.lookup("bob")).toBe(7);
    expect(directory.externalId(0)).toBe("alice");
    expect(directory.externalId(7)).toBe("bob");
    expect(directory.size).toBe(2);
  });

  it("finds nothing for an id never added, even one sharing a prefix or a length", () => {
    const directory = new UserDirectory();
    directory.add(1, "user_10");
    for (const id of ["carol", "user_1", "user_100", "user_11", "USER_10", "", "x".repeat(300)]) {
      expect(directory.lookup(id)).toBeUndefined();
    }
    expect(new UserDirectory().lookup("anyone")).toBeUndefined();
  });

  it("accepts the same pair twice and refuses a conflicting one of either kind, changing nothing", () => {
    const directory = new UserDirectory();
    directory.add(1, "alice");
    directory.add(1, "alice");
    expect(directory.size).toBe(1);
    expect(() => directory.add(2, "alice")).toThrow(/conflict/);
    expect(() => directory.add(1, "bob")).toThrow(/conflict/);
    expect(directory.size).toBe(1);
    expect(directory.lookup("alice")).toBe(1);
    expect(directory.lookup("bob")).toBeUndefined();
    expect(directory.externalId(2)).toBeUndefined();
  });

  it("leaves gaps between uids unassigned, within and across pages", () => {
    const directory = new UserDirectory({ initialCapacity: 4 });
    const uids = [0, 5, 2 ** 20 - 1, 2 ** 20, 2 ** 20 + 3, 3 * 2 ** 20 + 7, 2 ** 32 - 2];
    for (const uid of uids) directory.add(uid, `id-${uid}`);
    for (const uid of uids) {
      expect(directory.externalId(uid)).toBe(`id-${uid}`);
      expect(directory.lookup(`id-${uid}`)).toBe(uid);
    }
    for (const gap of [1, 4, 6, 2 ** 20 + 1, 2 * 2 ** 20, 3 * 2 ** 20 + 6, 2 ** 32 - 3]) expect(directory.externalId(gap)).toBeUndefined();
    for (const notUid of [-1, 1.5, 2 ** 32 - 1, 2 ** 32, Number.NaN]) expect(directory.externalId(notUid)).toBeUndefined();
    expect(directory.size).toBe(uids.length);
    expect(directory.uidBound).toBe(2 ** 32 - 1);
    expect(new UserDirectory().uidBound).toBe(0);
    // EVERYONE's members: exactly the assigned uids, as a copy later adds do not touch.
    const all = directory.allUids();
    expect(all.toArray()).toEqual(uids);
    directory.add(1, "id-1");
    expect(all.has(1)).toBe(false);
    expect(directory.allUids().has(1)).toBe(true);
  });

  it("refuses a uid outside [0, 2^32 − 2] and an id that is not 1–256 bytes of UTF-8", () => {
    const directory = new UserDirectory();
    expect(() => directory.add(-1, "a")).toThrow(RangeError);
    expect(() => directory.add(2 ** 32 - 1, "a")).toThrow(RangeError);
    expect(() => directory.add(0.5, "a")).toThrow(RangeError);
    expect(() => directory.add(0, "")).toThrow(RangeError);
    expect(() => directory.add(0, "a".repeat(257))).toThrow(RangeError);
    expect(() => directory.add(0, `${"é".repeat(128)}a`)).toThrow(RangeError);
    expect(() => directory.add(0, "lone \ud800 surrogate")).toThrow(RangeError);
    expect(directory.lookup("lone \ud800 surrogate")).toBeUndefined();
    expect(directory.size).toBe(0);
  });

  it("stores non-ASCII ids exactly, up to 256 bytes", () => {
    const directory = new UserDirectory({ initialCapacity: 2 });
    const ids = [
      "é",
      "café",
      "cafe\u0301", // the same text decomposed: different bytes, a different user
      "😀",
      "user-😀-ü",
      "用户一",
      "用户二",
      "a".repeat(256),
      "é".repeat(128),
      "😀".repeat(64),
      `${"用".repeat(85)}a`, // 255 + 1 bytes
    ];
    for (const [uid, id] of ids.entries()) directory.add(uid, id);
    for (const [uid, id] of ids.entries()) {
      expect(directory.lookup(id)).toBe(uid);
      expect(directory.externalId(uid)).toBe(id);
    }
    expect(directory.lookup("cafe")).toBeUndefined();
    expect(directory.lookup("用户三")).toBeUndefined();
    expect(directory.lookup("😀".repeat(63))).toBeUndefined();
  });

  it("looks ids up from UTF-8 bytes inside a larger buffer exactly as from strings", () => {
    const directory = new UserDirectory({ initialCapacity: 2 });
    const known = ["alice", "é", "cafe\u0301", "😀".repeat(64), "用户一", "a".repeat(256)];
    for (const [uid, id] of known.entries()) directory.add(uid * 5, id);
    const asked = [...known, "bob", "café", "ALICE", "alic", "a".repeat(255), "用户二"];
    // All ids back to back after a prefix, so every lookup reads from the middle of the buffer.
    const parts = asked.map((id) => Buffer.from(id));
    const bytes = new Uint8Array(Buffer.concat([Buffer.from("prefix"), ...parts]));
    let start = "prefix".length;
    for (const [i, part] of parts.entries()) {
      const id = asked[i] as string;
      expect(directory.lookupUtf8(bytes, start, start + part.length), id).toBe(directory.lookup(id));
      start += part.length;
    }
    expect(directory.lookupUtf8(bytes, 3, 3)).toBeUndefined();
    expect(directory.lookupUtf8(new Uint8Array(257).fill(0x61), 0, 257)).toBeUndefined();
    // A lookup from bytes must not disturb one from a string (they share the scratch buffer).
    expect(directory.lookup("alice")).toBe(0);
  });

  it("looks up runs of UTF-8 ids in groups with the same answers as one by one", () => {
    const directory = new UserDirectory({ initialCapacity: 2 });
    // Enough users that many sit past their home slot, so the probing fallback runs too.
    for (let i = 0; i < 20_000; i++) directory.add(i * 3, i % 7 === 0 ? `用户-${i}` : `user_${i}`);
    const asked: string[] = [];
    for (let i = 0; i < 25_000; i += 3) asked.push(i % 7 === 0 ? `用户-${i}` : `user_${i}`, `stranger_${i}`);
    asked.push("x".repeat(257), "a".repeat(256));
    const parts = asked.map((id) => Buffer.from(id));
    const bytes = new Uint8Array(Buffer.concat(parts));
    const ends = new Uint32Array(parts.length);
    let end = 0;
    for (const [i, part] of parts.entries()) ends[i] = end += part.length;
    // The empty id: an end equal to the one before.
    const withEmpty = Uint32Array.from([...ends.subarray(0, 5), ends[4] as number, ...ends.subarray(5)]);
    const out = new Uint32Array(withEmpty.length).fill(7);
    directory.lookupManyUtf8(bytes, withEmpty, 0, 3, out);
    directory.lookupManyUtf8(bytes, withEmpty, 3, withEmpty.length, out);
    let found = 0;
    for (let i = 0; i < withEmpty.length; i++) {
      const start = i === 0 ? 0 : (withEmpty[i - 1] as number);
      const expected = directory.lookupUtf8(bytes, start, withEmpty[i] as number) ?? NOT_FOUND;
      expect(out[i], `id ${i}`).toBe(expected);
      if (expected !== NOT_FOUND) found++;
    }
    expect(out[5]).toBe(NOT_FOUND);
    expect(found).toBe(Math.ceil(20_000 / 3));
  });

  it("tells apart ids with the same 32-bit hash by every path, before and during a doubling", () => {
    // A birthday search: among ~2^17 ids, two share a hash (the table compares hashes before bytes).
    const seen = new Map<number, string>();
    let pair: [string, string] | undefined;
    for (let i = 0; pair === undefined; i++) {
      const id = `c${i}`;
      const other = seen.get(idHash(id));
      if (other !== undefined) pair = [other, id];
      else seen.set(idHash(id), id);
    }
    const [first, second] = pair;
    expect(idHash(first)).toBe(idHash(second));
    const bytesOf = (ids: string[]) => {
      const parts = ids.map((id) => Buffer.from(id));
      const ends = new Uint32Array(parts.length);
      let end = 0;
      for (const [i, part] of parts.entries()) ends[i] = end += part.length;
      return { bytes: new Uint8Array(Buffer.concat(parts)), ends };
    };
    const many = (directory: UserDirectory, ids: string[]) => {
      const { bytes, ends } = bytesOf(ids);
      const out = new Uint32Array(ids.length);
      directory.lookupManyUtf8(bytes, ends, 0, ids.length, out);
      return [...out];
    };
    const directory = new UserDirectory({ initialCapacity: 4 });
    directory.add(5, first);
    expect(directory.lookup(second)).toBeUndefined();
    expect(many(directory, [second, first])).toEqual([NOT_FOUND, 5]);
    directory.add(9, second);
    expect([directory.lookup(first), directory.lookup(second)]).toEqual([5, 9]);
    expect(many(directory, [second, first])).toEqual([9, 5]);
    expect(() => directory.add(10, second)).toThrow(/conflict/);
    // Ask again after every add through two doublings: while one moves slots, both tables are probed.
    for (let uid = 100; directory.size < 60; uid++) {
      directory.add(uid, `filler_${uid}`);
      expect(many(directory, [first, second, "c-none"])).toEqual([5, 9, NOT_FOUND]);
      expect([directory.lookup(first), directory.lookup(second)]).toEqual([5, 9]);
    }
    const interned = new UserDirectory();
    const { bytes, ends } = bytesOf([first, second, first]);
    expect([
      interned.intern(bytes, 0, ends[0] ?? 0),
      interned.intern(bytes, ends[0] ?? 0, ends[1] ?? 0),
      interned.intern(bytes, ends[1] ?? 0, ends[2] ?? 0),
    ]).toEqual([0, 1, 0]);
  });

  it("as a set of distinct ids (everyone: false) numbers them the same and keeps no bitmap of its uids", () => {
    const bytes = new TextEncoder().encode("abcab");
    const set = new UserDirectory({ everyone: false });
    const plain = new UserDirectory();
    for (const directory of [set, plain]) {
      expect([0, 1, 2, 3].map((i) => directory.intern(bytes, i, i + 2))).toEqual([0, 1, 2, 0]);
      expect(directory.lookup("ca")).toBe(2);
    }
    expect(plain.allUids().toArray()).toEqual([0, 1, 2]);
    expect(() => set.allUids()).toThrow(/everyone: false/);
    expect(() => set.countExcept(plain.allUids())).toThrow(/everyone: false/);
    expect(set.byteSize()).toBeLessThan(plain.byteSize());
  });

  it("hands out each id's hash from a group lookup, and takes it back in intern and addStoredMany", () => {
    const ids = ["user_1", "用户-2", "x".repeat(256), "user_3"];
    const parts = ids.map((id) => Buffer.from(id));
    const bytes = new Uint8Array(Buffer.concat(parts));
    const ends = new Uint32Array(parts.length);
    let end = 0;
    for (const [i, part] of parts.entries()) ends[i] = end += part.length;
    const hashes = new Uint32Array(ids.length);
    new UserDirectory().lookupManyUtf8(bytes, ends, 0, ids.length, new Uint32Array(ids.length), hashes);
    expect([...hashes]).toEqual(ids.map(idHash));
    const starts = [0, ...ends.subarray(0, -1)];
    expect(ids.map((_, i) => new UserDirectory().hashUtf8(bytes, starts[i] ?? 0, ends[i] ?? 0))).toEqual(ids.map(idHash));
    const interned = new UserDirectory({ everyone: false });
    expect(ids.map((_, i) => interned.intern(bytes, starts[i] ?? 0, ends[i] ?? 0, hashes[i]))).toEqual([0, 1, 2, 3]);
    const stored = new UserDirectory();
    stored.addStoredMany(10, bytes, ends, 0, ids.length, hashes);
    for (const directory of [interned, stored]) {
      const offset = directory === stored ? 10 : 0;
      expect(ids.map((id) => directory.lookup(id))).toEqual(ids.map((_, i) => i + offset));
    }
  });

  it("enters stored ids from UTF-8 bytes exactly as from strings, and interns ids in arrival order", () => {
    const utf8 = new TextEncoder();
    const bytes = utf8.encode("xx用户-1yyalice");
    const directory = new UserDirectory();
    directory.addStoredUtf8(4, bytes, 2, 10);
    expect(directory.externalId(4)).toBe("用户-1");
    expect(directory.lookup("用户-1")).toBe(4);
    directory.add(4, "用户-1");
    // A stored uid entered again (a catch-up overlapping an entry) is skipped, never rewritten.
    directory.addStoredUtf8(4, bytes, 12, 17);
    expect(directory.externalId(4)).toBe("用户-1");
    expect(() => directory.addStoredUtf8(5, bytes, 3, 3)).toThrow(RangeError);

    const set = new UserDirectory();
    expect([set.intern(bytes, 12, 17), set.intern(bytes, 2, 10), set.intern(bytes, 12, 17)]).toEqual([0, 1, 0]);
    expect(set.size).toBe(2);
    expect(set.externalId(1)).toBe("用户-1");
  });

  it("enters a run of stored ids in groups with the same result as one by one, holes and repeats included", () => {
    const utf8 = new TextEncoder();
    // 3,001 uids from 100: every 7th a hole, a few non-ASCII, lengths 1 to 256 bytes.
    const ids = Array.from({ length: 3_001 }, (_, i) =>
      i % 7 === 3 ? "" : i % 11 === 0 ? `ユーザー${i}` : `u${i}`.padEnd(1 + (i % 256), "x"),
    );
    const bytes = utf8.encode(ids.join(""));
    const ends = new Uint32Array(ids.length);
    ids.reduce((end, id, i) => (ends[i] = end + utf8.encode(id).length), 0);
    const one = new UserDirectory({ initialCapacity: 16 });
    const many = new UserDirectory({ initialCapacity: 16 });
    for (const [i, id] of ids.entries()) if (id !== "") one.addStoredUtf8(100 + i, utf8.encode(id), 0, utf8.encode(id).length);
    // In uneven slices, the second overlapping the first: entered uids are skipped.
    many.addStoredMany(100, bytes, ends, 0, 1_000);
    many.addStoredMany(100, bytes, ends, 990, 2_017);
    many.addStoredMany(100, bytes, ends, 2_017, ids.length);
    expect(many.size).toBe(one.size);
    expect(many.uidBound).toBe(one.uidBound);
    // EVERYONE's bitmap takes a group's uids as ranges: the holes stay out of it.
    expect(many.allUids().toArray()).toEqual(one.allUids().toArray());
    expect(many.allUids().has(103)).toBe(false);
    ids.forEach((id, i) => {
      expect(many.externalId(100 + i)).toBe(id === "" ? undefined : id);
      if (id !== "") expect(many.lookup(id)).toBe(100 + i);
    });
    expect(many.lookup("u3")).toBeUndefined();
    expect(() => many.addStoredMany(2 ** 32 - 2, bytes, ends, 0, 2)).toThrow(RangeError);
  });

  it("keeps every mapping through many doublings and page boundaries", () => {
    // From 16 slots to 2^23: 19 rehashes. uids 3 apart span 9 uid pages; the ids fill many arena
    // chunks' worth of growth, and ~1,000 pairs among 3M ids share a 32-bit hash.
    const directory = new UserDirectory({ initialCapacity: 16 });
    const count = 3_000_000;
    for (let i = 0; i < count; i++) directory.add(i * 3, `external-${i}`);
    expect(directory.size).toBe(count);
    for (let i = 0; i < count; i += 1009) {
      expect(directory.lookup(`external-${i}`)).toBe(i * 3);
      expect(directory.externalId(i * 3)).toBe(`external-${i}`);
      expect(directory.externalId(i * 3 + 1)).toBeUndefined();
    }
    expect(directory.lookup(`external-${count}`)).toBeUndefined();
    expect(directory.byteSize()).toBeGreaterThan(count * "external-0".length);
  });

  it("finds every user by every path while a doubling is still moving slots, and refuses conflicts there", () => {
    // The table rehashes a few slots per add, so right after each doubling most ids are only in the
    // old table: every add below is followed by a check of all ids added so far.
    const directory = new UserDirectory({ initialCapacity: 16 });
    const encoder = new TextEncoder();
    const ids: string[] = [];
    for (let i = 0; i < 1_000; i++) {
      const id = `mover-${i}`;
      ids.push(id);
      if (i % 3 === 0) directory.add(i, id);
      else if (i % 3 === 1) expect(directory.intern(encoder.encode(id), 0, encoder.encode(id).length)).toBe(i);
      else directory.addStoredUtf8(i, encoder.encode(`xx${id}`), 2, 2 + encoder.encode(id).length);
      const bytes = encoder.encode(ids.join(""));
      const ends = new Uint32Array(ids.length);
      ids.reduce((end, each, k) => (ends[k] = end + each.length), 0);
      const out = new Uint32Array(ids.length);
      directory.lookupManyUtf8(bytes, ends, 0, ids.length, out);
      expect([...out]).toEqual(ids.map((_, k) => k));
      expect(ids.map((each) => directory.lookup(each))).toEqual(ids.map((_, k) => k));
      expect(directory.lookup(`mover-${i + 1}`)).toBeUndefined();
      // The first id sits in the old table right after a doubling: a second uid for it is refused.
      expect(() => directory.add(10_000 + i, "mover-0")).toThrow(/conflict/);
      directory.add(0, "mover-0");
    }
    expect(directory.size).toBe(1_000);
  });

  it("starts small and reports the bytes it holds", () => {
    const directory = new UserDirectory();
    const empty = directory.byteSize();
    expect(empty).toBeGreaterThan(0);
    expect(empty).toBeLessThan(64 * 1024);
    for (let i = 0; i < 10_000; i++) directory.add(i, `user_${i}`);
    expect(directory.byteSize()).toBeGreaterThan(empty + 10_000 * "user_0".length);
  });

  it("holds more users than a V8 Map can (2^24)", () => {
    const directory = new UserDirectory();
    const count = 20_000_000;
    for (let i = 0; i < count; i++) directory.add(i, `u${i}`);
    expect(directory.size).toBe(count);
    let mismatches = 0;
    for (let i = 0; i < count; i += 997) {
      if (directory.lookup(`u${i}`) !== i || directory.externalId(i) !== `u${i}`) mismatches++;
    }
    expect(mismatches).toBe(0);
    expect(directory.lookup(`u${count}`)).toBeUndefined();
    expect(directory.externalId(count)).toBeUndefined();
  });
});

describe("UidRecords", () => {
  // Positions past 4 GiB need an arena that big to reach through the directory, so they are tested here.
  it("keeps 40-bit positions exactly, keeping high bytes only in pages that have one", () => {
    const records = new UidRecords(4);
    const small = 2 ** 32 - 1;
    const high = 2 ** 40 - 2;
    const placed: [number, number][] = [
      [0, 1],
      [1, small],
      [2, 2 ** 32],
      [3, high],
      [2 ** 20 + 5, 7],
      [2 ** 20 + 6, 2 ** 33 + 12345],
      [3 * 2 ** 20, 99],
    ];
    records.set(0, 1);
    records.set(1, small);
    expect(records.hasHighBytes).toBe(false);
    for (const [uid, position] of placed) records.set(uid, position);
    expect(records.hasHighBytes).toBe(true);
    for (const [uid, position] of placed) expect(records.position(uid)).toBe(position);
    for (const unset of [4, 2 ** 20, 2 ** 20 + 7, 2 * 2 ** 20, 3 * 2 ** 20 + 1]) expect(records.position(unset)).toBe(0);
    // A page keeps its high bytes through growth, and one set back to a low position reads back low.
    for (let uid = 4; uid < 5000; uid++) records.set(uid, uid);
    expect(records.position(3)).toBe(high);
    records.set(3, 42);
    expect(records.position(3)).toBe(42);
    expect(records.position(4999)).toBe(4999);
    // Four bytes per uid until a position needs a fifth.
    expect(new UidRecords(1024).byteSize()).toBe(0);
    const lows = new UidRecords(1024);
    lows.set(1023, 5);
    expect(lows.byteSize()).toBe(4 * 1024);
    lows.set(0, 2 ** 32);
    expect(lows.byteSize()).toBe(5 * 1024);
  });
});
