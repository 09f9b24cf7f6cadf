/**
 * Synthetic data from a seeded RNG, identical for us and every baseline: user n's id is
 * `user_<n>` for even n and a UUID derived from (seed, n) for odd n, so any process can compute
 * any id without sharing a list.
 */

/** A small, fast, seedable PRNG (mulberry32): same seed, same sequence, everywhere. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The external id of user `n`. */
export function userId(seed: number, n: number): string {
  if (n % 2 === 0) return `user_${n}`;
  const next = rng((seed * 2654435761) ^ n);
  const hex = Array.from({ length: 4 }, () => ((next() * 4294967296) >>> 0).toString(16).padStart(8, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** A segment of the dataset: which user numbers are members. */
export interface SegmentSpec {
  key: "dense" | "sparse" | "clustered";
  description: string;
  /** Member user numbers in ascending order, produced in batches. */
  members(): Generator<number[]>;
  size: number;
}

/** The three segments of a dataset of `users` users: dense (all), sparse (1% random), clustered (10% in runs). */
export function segmentSpecs(seed: number, users: number, batch: number): SegmentSpec[] {
  const sparseEvery = 100;
  // Runs of 1,000 users at full size; shorter for tiny test datasets so the segment is not empty.
  const run = Math.max(1, Math.min(1_000, Math.floor(users / 100)));
  return [
    {
      key: "dense",
      description: "every user",
      size: users,
      members: () =>
        batches(batch, function* () {
          for (let n = 0; n < users; n++) yield n;
        }),
    },
    {
      key: "sparse",
      description: "1% of users, uniformly at random",
      size: Math.floor(users / sparseEvery),
      members: () =>
        batches(batch, function* () {
          // One random member per block of 100 users: uniform, exactly 1%, and already sorted.
          const next = rng(seed + 1);
          for (let block = 0; block + sparseEvery <= users; block += sparseEvery) yield block + Math.floor(next() * sparseEvery);
        }),
    },
    {
      key: "clustered",
      description: `10% of users, in runs of ${run} consecutive users`,
      size: Math.floor(users / (run * 10)) * run,
      members: () =>
        batches(batch, function* () {
          for (let start = 0; start + run * 10 <= users; start += run * 10) for (let n = start; n < start + run; n++) yield n;
        }),
    },
  ];
}

/** The numbers a generator yields, in arrays of `size`. */
export function* batches(size: number, numbers: () => Generator<number>): Generator<number[]> {
  let out: number[] = [];
  for (const n of numbers()) {
    out.push(n);
    if (out.length === size) {
      yield out;
      out = [];
    }
  }
  if (out.length > 0) yield out;
}
