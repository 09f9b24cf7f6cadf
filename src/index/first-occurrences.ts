/**
 * Which of a request's ids occur for the first time, so that an id named twice becomes one new
 * user. The ids stay where they lie in the request's bytes; a table of indices, keyed by the hash
 * the directory lookup already computed, compares bytes only when hashes agree. It replaces a
 * per-request UserDirectory, which copied each new id into an arena and filled a table of three
 * words per slot: ~15% of AddMembers' busy time for new users (profile, 2M new users).
 */

/**
 * The ids of one request (`bytes`, `ends`: id i is `bytes[ends[i − 1], ends[i])`) that no earlier
 * candidate has: candidates come one at a time, in ascending order, so the caller can pause
 * between them. `hashes[i]` is id i's hash, and equal ids must have equal hashes.
 */
export class FirstOccurrences {
  /**
   * An entry is a candidate's index + 1; at most half full, so probe chains stay short. Made at
   * the first candidate: a request of known ids only has none and allocates nothing.
   */
  private table = new Uint32Array(0);
  private mask = 0;
  private firsts = new Uint32Array(0);
  private count = 0;

  /** @param capacity the most candidates there will be. */
  constructor(
    private readonly bytes: Uint8Array,
    private readonly ends: Uint32Array,
    private readonly hashes: Uint32Array,
    private readonly capacity: number,
  ) {}

  /** Takes candidate id i; returns whether it is the first with its bytes. */
  add(i: number): boolean {
    if (this.firsts.length === 0) this.allocate();
    const { table, hashes, mask } = this;
    const hash = hashes[i] ?? 0;
    // The hash's low bits pick the slot: murmur3's finalizer mixes every bit.
    for (let at = hash & mask; ; at = (at + 1) & mask) {
      const entry = table[at] ?? 0;
      if (entry === 0) {
        table[at] = i + 1;
        this.firsts[this.count++] = i;
        return true;
      }
      const j = entry - 1;
      if (hashes[j] === hash && sameId(this.bytes, this.ends, i, j)) return false;
    }
  }

  private allocate(): void {
    let size = 2;
    while (size < 2 * this.capacity) size *= 2;
    this.table = new Uint32Array(size);
    this.mask = size - 1;
    this.firsts = new Uint32Array(this.capacity);
  }

  /** The first occurrences so far, in the order they came. */
  get indices(): Uint32Array {
    return this.firsts.subarray(0, this.count);
  }
}

/** Whether ids i and j of the request have the same bytes. */
function sameId(bytes: Uint8Array, ends: Uint32Array, i: number, j: number): boolean {
  const iStart = i === 0 ? 0 : (ends[i - 1] ?? 0);
  const jStart = j === 0 ? 0 : (ends[j - 1] ?? 0);
  const length = (ends[i] ?? 0) - iStart;
  if ((ends[j] ?? 0) - jStart !== length) return false;
  for (let b = 0; b < length; b++) if (bytes[iStart + b] !== bytes[jStart + b]) return false;
  return true;
}
