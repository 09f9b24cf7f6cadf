import { describe, expect, it } from "vitest";
import { MemberFilter } from "../../src/index/member-filter.js";
import { RoaringBitmap32 } from "../../src/index/roaring.js";
import { NOT_FOUND, UserDirectory } from "../../src/index/user-directory.js";
import { MemberFilters } from "../../src/service/member-filters.js";
import { pack } from "../support/packed-ids.js";

/** Deterministic 32-bit values (xorshift). */
function randomWords(count: number, seed: number): Uint32Array {
  const out = new Uint32Array(count);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < count; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x >>> 0;
  }
  return out;
}

function directoryOf(users: number): UserDirectory {
  const directory = new UserDirectory();
  for (let uid = 0; uid < users; uid++) directory.add(uid, uid % 3 === 0 ? `user_${uid}` : `ü-${uid}-${"x".repeat(uid % 40)}`);
  return directory;
}

describe("MemberFilter", () => {
  it("contains every hash added, and few others at the size it was made for", () => {
    const added = randomWords(50_000, 7);
    const filter = new MemberFilter(added.length);
    filter.addAll(added, added.length);
    for (const hash of added) expect(filter.mayContain(hash)).toBe(true);
    const others = randomWords(200_000, 99);
    const positives = others.filter((hash) => filter.mayContain(hash)).length;
    // 16–32 bits per member, four bits each: well under 1% in theory; 2% leaves room, not a pass for a broken one.
    expect(positives / others.length).toBeLessThan(0.02);
    expect(filter.hasRoomFor(1)).toBe(true);
    expect(MemberFilter.bytesFor(added.length)).toBe(filter.byteSize);
  });

  it("keeps every hash once overfilled, and says it has no room", () => {
    const filter = new MemberFilter(100);
    const added = randomWords(5_000, 3);
    filter.addAll(added, added.length);
    for (const hash of added) expect(filter.mayContain(hash)).toBe(true);
    expect(filter.hasRoomFor(1)).toBe(false);
    expect(new MemberFilter(0).mayContain(12345)).toBe(false);
  });
});

describe("UserDirectory with a member filter", () => {
  it("hashes stored ids as it hashes the same ids in a request", () => {
    const directory = directoryOf(3_000);
    const uids = Uint32Array.from([0, 1, 2, 999, 2_999, 5_000]);
    const hashes = new Uint32Array(uids.length);
    expect(directory.hashesOf(uids, uids.length, hashes)).toBe(1);
    for (let i = 0; i < 5; i++) {
      const bytes = new TextEncoder().encode(directory.externalId(uids[i] ?? 0));
      expect(hashes[i]).toBe(directory.hashUtf8(bytes, 0, bytes.length));
    }
    expect(hashes[5]).toBe(0);
  });

  it("finds the members as without the filter and rules out nearly every other user", () => {
    const directory = directoryOf(20_000);
    const members = Uint32Array.from(randomWords(400, 5), (word) => word % 20_000);
    const hashes = new Uint32Array(members.length);
    directory.hashesOf(members, members.length, hashes);
    const filter = new MemberFilter(members.length);
    filter.addAll(hashes, members.length);
    const asked = Array.from({ length: 20_000 }, (_, uid) => directory.externalId(uid) ?? "");
    asked.push("", "nobody", "x".repeat(300));
    const { bytes, ends } = pack(asked);
    const plain = new Uint32Array(asked.length);
    const filtered = new Uint32Array(asked.length);
    const hashesOut = new Uint32Array(asked.length);
    directory.lookupManyUtf8(bytes, ends, 0, asked.length, plain);
    directory.lookupManyUtf8(bytes, ends, 0, asked.length, filtered, hashesOut, filter);
    const memberSet = new Set(members);
    let passed = 0;
    for (let i = 0; i < asked.length; i++) {
      if (memberSet.has(i)) expect(filtered[i]).toBe(plain[i]);
      else if (filtered[i] !== NOT_FOUND) {
        expect(filtered[i]).toBe(plain[i]);
        passed++;
      }
      const start = i === 0 ? 0 : (ends[i - 1] ?? 0);
      const end = ends[i] ?? 0;
      if (end - start > 0 && end - start <= 256) expect(hashesOut[i]).toBe(directory.hashUtf8(bytes, start, end));
    }
    expect(plain[20_001]).toBe(NOT_FOUND);
    expect(passed).toBeLessThan(200);
  });
});

describe("MemberFilters", () => {
  const SEGMENT = "s";
  const bitmapOf = (uids: Iterable<number>) => new RoaringBitmap32(uids);
  const rangeOf = (from: number, to: number) => {
    const bitmap = new RoaringBitmap32();
    bitmap.addRange(from, to);
    return bitmap;
  };

  it("builds a segment's filter in the background, then answers from it", async () => {
    const directory = directoryOf(10_000);
    const filters = new MemberFilters(directory);
    const bitmap = bitmapOf([1, 50, 2_000, 9_999]);
    expect(filters.for(SEGMENT, bitmap)).toBeUndefined();
    await filters.idle();
    const filter = filters.for(SEGMENT, bitmap);
    expect(filter).toBeDefined();
    for (const uid of bitmap) expect(filter?.mayContain(hashOf(directory, uid))).toBe(true);
    expect(filters.byteSize).toBe(filter?.byteSize);
  });

  it("takes a few new members into the filter on the call that finds them, and a removal changes nothing", async () => {
    const directory = directoryOf(10_000);
    const filters = new MemberFilters(directory);
    const first = bitmapOf([1, 2, 3]);
    filters.for(SEGMENT, first);
    await filters.idle();
    const before = filters.for(SEGMENT, first);
    const second = bitmapOf([2, 3, 4_000, 7_777]);
    const after = filters.for(SEGMENT, second);
    expect(after).toBe(before);
    for (const uid of [2, 3, 4_000, 7_777]) expect(after?.mayContain(hashOf(directory, uid))).toBe(true);
    // The bitmap it now has every member of: the same filter again, without another catch-up.
    expect(filters.for(SEGMENT, second)).toBe(after);
  });

  it("rebuilds after a change too large to catch up with, serving nothing stale meanwhile", async () => {
    const directory = directoryOf(20_000);
    const filters = new MemberFilters(directory);
    const first = bitmapOf([5]);
    filters.for(SEGMENT, first);
    await filters.idle();
    expect(filters.for(SEGMENT, first)).toBeDefined();
    const big = rangeOf(10_000, 15_000);
    expect(filters.for(SEGMENT, big)).toBeUndefined();
    expect(filters.for(SEGMENT, big)).toBeUndefined();
    await filters.idle();
    const rebuilt = filters.for(SEGMENT, big);
    expect(rebuilt).toBeDefined();
    for (const uid of big) expect(rebuilt?.mayContain(hashOf(directory, uid))).toBe(true);
  });

  it("catches up with a change made while its build ran", async () => {
    const directory = directoryOf(20_000);
    const filters = new MemberFilters(directory);
    const first = rangeOf(0, 4_000);
    filters.for(SEGMENT, first);
    const next = RoaringBitmap32.or(first, bitmapOf([19_000]));
    expect(filters.for(SEGMENT, next)).toBeUndefined();
    await filters.idle();
    const filter = filters.for(SEGMENT, next);
    expect(filter?.mayContain(hashOf(directory, 19_000))).toBe(true);
  });

  it("makes none for a segment of more than a quarter of the users, and drops one that grew past it", async () => {
    const directory = directoryOf(1_000);
    const filters = new MemberFilters(directory);
    const small = bitmapOf([1, 2]);
    filters.for(SEGMENT, small);
    await filters.idle();
    expect(filters.for(SEGMENT, small)).toBeDefined();
    const large = rangeOf(0, 251);
    expect(filters.for(SEGMENT, large)).toBeUndefined();
    await filters.idle();
    expect(filters.for(SEGMENT, large)).toBeUndefined();
    expect(filters.byteSize).toBe(0);
  });

  it("drops the least recently used filter to stay within its bytes", async () => {
    const directory = directoryOf(10_000);
    const one = new MemberFilter(1_000).byteSize;
    const filters = new MemberFilters(directory, 2 * one);
    const [a, b, c] = [rangeOf(0, 1_000), rangeOf(1_000, 2_000), rangeOf(2_000, 3_000)];
    filters.for("a", a);
    filters.for("b", b);
    await filters.idle();
    expect(filters.for("a", a)).toBeDefined();
    filters.for("c", c);
    await filters.idle();
    expect(filters.byteSize).toBe(2 * one);
    expect(filters.for("a", a)).toBeDefined();
    expect(filters.for("c", c)).toBeDefined();
    // b, least recently used, went; asking again starts it over.
    expect(filters.for("b", b)).toBeUndefined();
  });

  it("makes no filter larger than all may be together, nor tries that bitmap again", async () => {
    const directory = new CountingDirectory();
    for (let uid = 0; uid < 10_000; uid++) directory.add(uid, `user_${uid}`);
    const filters = new MemberFilters(directory, MemberFilter.bytesFor(100));
    const large = rangeOf(0, 1_000);
    expect(filters.for(SEGMENT, large)).toBeUndefined();
    await filters.idle();
    expect(filters.for(SEGMENT, large)).toBeUndefined();
    await filters.idle();
    expect(directory.hashed).toBe(0);
    expect(filters.byteSize).toBe(0);
    const small = rangeOf(0, 100);
    filters.for(SEGMENT, small);
    await filters.idle();
    expect(filters.for(SEGMENT, small)).toBeDefined();
  });

  it("makes no filter of a bitmap holding a uid the directory does not know, nor tries again, and does of the next", async () => {
    const directory = new CountingDirectory();
    for (let uid = 0; uid < 10_000; uid++) directory.add(uid, `user_${uid}`);
    const filters = new MemberFilters(directory);
    const ahead = bitmapOf([1, 10_500]);
    filters.for(SEGMENT, ahead);
    await filters.idle();
    const tried = directory.hashed;
    expect(tried).toBeGreaterThan(0);
    expect(filters.for(SEGMENT, ahead)).toBeUndefined();
    await filters.idle();
    expect(directory.hashed).toBe(tried);
    directory.add(10_500, "late");
    const next = bitmapOf([1, 10_500, 2]);
    expect(filters.for(SEGMENT, next)).toBeUndefined();
    await filters.idle();
    expect(filters.for(SEGMENT, next)?.mayContain(hashOf(directory, 10_500))).toBe(true);
  });

  it("stops building and serves nothing once closed", async () => {
    const directory = directoryOf(10_000);
    const filters = new MemberFilters(directory);
    const bitmap = bitmapOf([1, 2]);
    filters.for(SEGMENT, bitmap);
    filters.close();
    await filters.idle();
    expect(filters.for(SEGMENT, bitmap)).toBeUndefined();
    expect(filters.byteSize).toBe(0);
  });
});

/** A real directory that counts the uids it is asked to hash. */
class CountingDirectory extends UserDirectory {
  hashed = 0;

  override hashesOf(uids: Uint32Array, count: number, out: Uint32Array): number {
    this.hashed += count;
    return super.hashesOf(uids, count, out);
  }
}

function hashOf(directory: UserDirectory, uid: number): number {
  const out = new Uint32Array(1);
  directory.hashesOf(Uint32Array.of(uid), 1, out);
  return out[0] ?? 0;
}
