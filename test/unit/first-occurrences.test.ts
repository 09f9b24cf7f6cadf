import { describe, expect, it } from "vitest";
import { rng } from "../../bench/lib/dataset.js";
import { FirstOccurrences } from "../../src/index/first-occurrences.js";
import { UserDirectory } from "../../src/index/user-directory.js";
import { pack } from "../support/packed-ids.js";

/** Candidates' first occurrences by a Set of strings: the oracle. */
function expected(ids: readonly string[], candidates: readonly number[]): number[] {
  const seen = new Set<string>();
  return candidates.filter((i) => {
    const id = ids[i] as string;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

function run(
  ids: readonly string[],
  candidates: readonly number[],
  hash: (bytes: Uint8Array, start: number, end: number) => number,
): number[] {
  const { bytes, ends } = pack(ids);
  const hashes = new Uint32Array(ids.length);
  for (let i = 0; i < ids.length; i++) hashes[i] = hash(bytes, i === 0 ? 0 : (ends[i - 1] ?? 0), ends[i] ?? 0);
  const firsts = new FirstOccurrences(bytes, ends, hashes, candidates.length);
  const added = candidates.map((i) => firsts.add(i));
  const result = Array.from(firsts.indices);
  // add() says true exactly for the candidates it keeps.
  expect(candidates.filter((_, k) => added[k])).toEqual(result);
  return result;
}

describe("FirstOccurrences", () => {
  const directory = new UserDirectory({ everyone: false });
  const realHash = (bytes: Uint8Array, start: number, end: number) => directory.hashUtf8(bytes, start, end);

  it("keeps each id's first candidate, in order, on random ids with many repeats", () => {
    const random = rng(11);
    for (let round = 0; round < 20; round++) {
      const pool = Array.from({ length: 1 + Math.floor(random() * 300) }, (_, k) => `u${k}_${"é".repeat(k % 3)}`);
      const ids = Array.from({ length: Math.floor(random() * 2_000) }, () => pool[Math.floor(random() * pool.length)] as string);
      const candidates = ids.map((_, i) => i).filter(() => random() < 0.7);
      expect(run(ids, candidates, realHash)).toEqual(expected(ids, candidates));
    }
  });

  it("compares bytes when hashes collide: every id hashed alike, and ids that differ only in their last byte or length", () => {
    const ids = ["abc", "abd", "abc", "ab", "abcd", "abd", "ab", "x", "abcd", "é", "é"];
    const all = ids.map((_, i) => i);
    expect(run(ids, all, () => 7)).toEqual(expected(ids, all));
    expect(run(ids, all, (_b, start, end) => end - start)).toEqual(expected(ids, all));
    expect(run(ids, all, realHash)).toEqual([0, 1, 3, 4, 7, 9]);
  });

  it("handles no candidates, and a table filled to its capacity", () => {
    expect(run(["a", "b"], [], realHash)).toEqual([]);
    const ids = Array.from({ length: 5_000 }, (_, i) => `id${i}`);
    const all = ids.map((_, i) => i);
    expect(run(ids, all, realHash)).toEqual(all);
  });
});
