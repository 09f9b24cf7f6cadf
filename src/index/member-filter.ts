/**
 * A Bloom filter over the directory hashes (UserDirectory.hashUtf8) of one segment's members. A
 * batch check of a small segment asks it first: most ids asked about are not members, and for
 * those the filter answers from the id's hash alone, without the directory lookup (two cache
 * misses into tables that hold every user) or the bitmap. An id it lets through is looked up as
 * before, so a false positive costs only the lookup it would have cost anyway.
 *
 * Blocked: an id's four bits lie in one 64-bit block (two words, one cache line), so a test is one
 * read. Bits are only ever set: a filter that has seen every member of a bitmap stays right for
 * any later bitmap whose new members it is given, however many members left meanwhile (their bits
 * only add false positives). Written here because the test must run inline in the directory's
 * lookup loop on the 32-bit hash it already computed: the npm filters (`bloom-filters`,
 * `bloomfilter`) hash a string or buffer key themselves, which is the string per id this path
 * avoids, and read their bits from scattered words.
 */

/** Bits per member a filter is sized for: 16–32 after rounding; 0.3–0.5% false positives (measured, random hashes). */
const BITS_PER_MEMBER = 16;
/** How many times its sizing a filter takes before it is due to be rebuilt (at 8 bits a member, 3.3%). */
const OVERFILL = 2;
/** Bits of the mixed hash used: four fields of six. */
const FIELDS = 24;

/** A blocked Bloom filter of 32-bit hashes. */
export class MemberFilter {
  private readonly words: Uint32Array;
  private readonly mask: number;
  /** Hashes added so far (members that left still count: their bits stay). */
  private added = 0;
  private readonly capacity: number;

  /** A filter sized for `members` hashes (at least one block). */
  constructor(members: number) {
    const blocks = blocksFor(members);
    this.words = new Uint32Array(2 * blocks);
    this.mask = blocks - 1;
    this.capacity = OVERFILL * ((blocks * 64) / BITS_PER_MEMBER);
  }

  /** The bytes a filter sized for `members` holds, without making one. */
  static bytesFor(members: number): number {
    return 8 * blocksFor(members);
  }

  /**
   * Whether `count` more hashes fit what it was sized for; past that its false positives climb
   * (3.3% at the limit) and it is due to be rebuilt.
   */
  hasRoomFor(count: number): boolean {
    return this.added + count <= this.capacity;
  }

  /** Bytes held. */
  get byteSize(): number {
    return this.words.byteLength;
  }

  /** Adds `hashes[0, count)`. */
  addAll(hashes: Uint32Array, count: number): void {
    const words = this.words;
    for (let i = 0; i < count; i++) {
      const hash = hashes[i] ?? 0;
      const at = (hash & this.mask) << 1;
      const bits = mix(hash);
      for (let f = 0; f < FIELDS; f += 6) {
        const word = at + ((bits >>> (f + 5)) & 1);
        words[word] = (words[word] ?? 0) | (1 << ((bits >>> f) & 31));
      }
    }
    this.added += count;
  }

  /** False only for a hash never added; true for every hash added (and for a few others). */
  mayContain(hash: number): boolean {
    const at = (hash & this.mask) << 1;
    const bits = mix(hash);
    const first = this.words[at] ?? 0;
    const second = this.words[at + 1] ?? 0;
    for (let f = 0; f < FIELDS; f += 6) {
      const word = ((bits >>> (f + 5)) & 1) === 0 ? first : second;
      if ((word & (1 << ((bits >>> f) & 31))) === 0) return false;
    }
    return true;
  }
}

/** 64-bit blocks for `members` at BITS_PER_MEMBER each: a power of two, at least one. */
function blocksFor(members: number): number {
  let blocks = 1;
  while (blocks * 64 < members * BITS_PER_MEMBER) blocks *= 2;
  return blocks;
}

/**
 * The block comes from the hash's low bits, so the bits in it come from all of it, mixed by
 * murmur3's finalizer (or ids sharing a block would share bits too). Four 6-bit fields of the
 * mixed hash each name one of the block's 64 bits: a field's top bit picks the word, its low five
 * bits the bit. (Computed where used, into locals: masks kept in module variables outside Smi
 * range were boxed on every store, 31 vs 13 ns a test in isolation.)
 */
function mix(hash: number): number {
  let h = hash ^ (hash >>> 16);
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}
