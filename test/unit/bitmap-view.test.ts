import { describe, expect, it } from "vitest";
import { rng } from "../../bench/lib/dataset.js";
import { BitmapView, MAX_VIEW_BYTES, viewOf } from "../../src/index/bitmap-view.js";
import { RoaringBitmap32 } from "../../src/index/roaring.js";

/** Every probe's answer from the view and from the bitmap itself. */
function answers(bitmap: RoaringBitmap32, probes: number[]): { view: boolean[]; roaring: boolean[] } {
  const view = new BitmapView(bitmap.serialize("portable"));
  return { view: probes.map((p) => view.has(p)), roaring: probes.map((p) => bitmap.has(p)) };
}

/** Members, their neighbours, container edges and random values. */
function probesFor(bitmap: RoaringBitmap32, random: () => number): number[] {
  const probes = [0, 1, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32 - 2, 2 ** 31];
  for (const member of bitmap.toArray().slice(0, 3_000)) probes.push(member, member + 1, Math.max(0, member - 1));
  for (let i = 0; i < 3_000; i++) probes.push(Math.floor(random() * 2 ** 32), Math.floor(random() * 2 ** 20));
  return probes.filter((p) => p <= 2 ** 32 - 1);
}

describe("BitmapView", () => {
  const shapes: [string, (random: () => number) => RoaringBitmap32][] = [
    ["empty", () => new RoaringBitmap32()],
    ["one value at each end of the range", () => new RoaringBitmap32([0, 2 ** 32 - 1])],
    ["array containers", (r) => new RoaringBitmap32(Array.from({ length: 5_000 }, () => Math.floor(r() * 2 ** 24)))],
    ["bitset containers", (r) => new RoaringBitmap32(Array.from({ length: 200_000 }, () => Math.floor(r() * 2 ** 19)))],
    [
      "exactly 4,096 and 4,097 values in a container",
      () => {
        const bitmap = new RoaringBitmap32();
        for (let i = 0; i < 4_096; i++) bitmap.add(i * 16);
        for (let i = 0; i < 4_097; i++) bitmap.add(65_536 + i * 15);
        return bitmap;
      },
    ],
    [
      "a full container",
      () => {
        const bitmap = new RoaringBitmap32();
        bitmap.addRange(3 * 65_536, 4 * 65_536);
        return bitmap;
      },
    ],
  ];

  for (const [name, make] of shapes) {
    it(`answers as the bitmap does: ${name}, as built and run-optimized`, () => {
      const random = rng(name.length * 7919);
      const bitmap = make(random);
      const probes = probesFor(bitmap, random);
      const plain = answers(bitmap, probes);
      expect(plain.view).toEqual(plain.roaring);
      bitmap.runOptimize();
      const optimized = answers(bitmap, probes);
      expect(optimized.view).toEqual(optimized.roaring);
    });
  }

  it("reads run containers with and without the offset header (fewer than four containers, then more)", () => {
    for (const containers of [1, 2, 3, 4, 5, 6, 40]) {
      const random = rng(containers);
      const bitmap = new RoaringBitmap32();
      for (let c = 0; c < containers; c++) {
        // A run, an array and a bitset container in turn, one per key, so each kind sits behind runs.
        const base = c * 65_536;
        if (c % 3 === 0)
          for (let run = 0; run < 20; run++) bitmap.addRange(base + run * 1_000, base + run * 1_000 + 1 + Math.floor(random() * 500));
        else if (c % 3 === 1) for (let i = 0; i < 100; i++) bitmap.add(base + Math.floor(random() * 65_536));
        else for (let i = 0; i < 30_000; i++) bitmap.add(base + Math.floor(random() * 65_536));
      }
      bitmap.runOptimize();
      const probes = probesFor(bitmap, random);
      const { view, roaring } = answers(bitmap, probes);
      expect(view).toEqual(roaring);
      expect(view.filter(Boolean).length).toBeGreaterThan(0);
    }
  });

  it("refuses bytes that are not a portable serialization, or are cut short", () => {
    const bytes = new RoaringBitmap32(Array.from({ length: 10_000 }, (_, i) => i * 7)).serialize("portable");
    expect(() => new BitmapView(new Uint8Array(8))).toThrow(/cookie/);
    expect(() => new BitmapView(bytes.subarray(0, bytes.length - 1))).toThrow(/cut short/);
  });

  it("keeps one view per bitmap, and none of a bitmap over the size limit", () => {
    const bitmap = new RoaringBitmap32([1, 2, 3]);
    expect(viewOf(bitmap)).toBe(viewOf(bitmap));
    expect(viewOf(new RoaringBitmap32([1, 2, 3]))).not.toBe(viewOf(bitmap));
    // Array containers of 2 bytes a value: this many values is over the limit.
    const big = new RoaringBitmap32(Array.from({ length: MAX_VIEW_BYTES / 2 + 70_000 }, (_, i) => i * 17));
    expect(big.getSerializationSizeInBytes("portable")).toBeGreaterThan(MAX_VIEW_BYTES);
    expect(viewOf(big)).toBeUndefined();
  });
});
