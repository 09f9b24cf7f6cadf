import { describe, expect, it } from "vitest";
import { addDelta, applyDelta, bitmapOf, decodeBitmap, encodeBitmap, removeDelta } from "../../src/index/membership.js";
import { RoaringBitmap32 } from "../../src/index/roaring.js";

describe("membership deltas", () => {
  const current = new RoaringBitmap32([1, 2, 3]);

  it("adds only uids that are not members yet", () => {
    const delta = addDelta(current, new RoaringBitmap32([2, 3, 4, 5]));
    expect(delta.added.toArray()).toEqual([4, 5]);
    expect(delta.removed.size).toBe(0);
  });

  it("removes only uids that are members", () => {
    const delta = removeDelta(current, new RoaringBitmap32([3, 9]));
    expect(delta.removed.toArray()).toEqual([3]);
    expect(delta.added.size).toBe(0);
  });

  it("applies a delta to a new bitmap, leaving the published one untouched", () => {
    const next = applyDelta(current, { added: new RoaringBitmap32([10]), removed: new RoaringBitmap32([1]) });
    expect(next.toArray()).toEqual([2, 3, 10]);
    expect(current.toArray()).toEqual([1, 2, 3]);
  });

  it("builds from unsorted uids and round-trips the portable format", () => {
    const bitmap = bitmapOf(Uint32Array.from([5, 4_000_000_000, 1, 5]));
    expect(bitmap.toArray()).toEqual([1, 5, 4_000_000_000]);
    expect(decodeBitmap(encodeBitmap(bitmap)).toArray()).toEqual([1, 5, 4_000_000_000]);
  });
});
