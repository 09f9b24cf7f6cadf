import { describe, expect, it } from "vitest";
import { copyBytes, ViewCache } from "../../src/index/byte-copy.js";

describe("copyBytes", () => {
  it("copies every length from 0 to 256 bytes at any alignment, and touches nothing around the copy", () => {
    const from = Uint8Array.from({ length: 300 }, (_, i) => (i * 37 + 11) & 0xff);
    const fromView = new DataView(from.buffer);
    for (let length = 0; length <= 256; length++) {
      for (const [start, at] of [
        [0, 0],
        [1, 3],
        [3, 2],
        [7, 5],
        [300 - length, 0],
      ] as const) {
        const to = new Uint8Array(264).fill(0xee);
        copyBytes(fromView, start, new DataView(to.buffer), at, length);
        expect(Array.from(to.subarray(at, at + length))).toEqual(Array.from(from.subarray(start, start + length)));
        expect(to.subarray(0, at).every((b) => b === 0xee)).toBe(true);
        expect(to.subarray(at + length).every((b) => b === 0xee)).toBe(true);
      }
    }
  });

  it("reads and writes through views of part of a buffer", () => {
    const backing = new Uint8Array(32).map((_, i) => i);
    const from = new DataView(backing.buffer, 8, 16);
    const target = new Uint8Array(32);
    const to = new ViewCache().of(target.subarray(4, 20));
    copyBytes(from, 2, to, 1, 9);
    expect(Array.from(target.subarray(5, 14))).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18]);
    expect(target[4]).toBe(0);
    expect(target[14]).toBe(0);
  });
});

describe("ViewCache", () => {
  it("makes a view once per array and a new one when the array changes", () => {
    const cache = new ViewCache();
    const a = new Uint8Array(8);
    const b = new Uint8Array(new ArrayBuffer(16), 4, 8);
    const view = cache.of(a);
    expect(cache.of(a)).toBe(view);
    const other = cache.of(b);
    expect(other).not.toBe(view);
    expect([other.byteOffset, other.byteLength]).toEqual([4, 8]);
  });
});
