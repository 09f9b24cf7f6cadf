/**
 * The user directory: external string ids ↔ dense uint32 uids. Every bitmap holds uids, so this
 * is the only place external ids live in memory. Pure: the store persists it, this only indexes.
 *
 * Built on typed arrays because a V8 Map stops at 2^24 entries and costs ~80 B per entry before
 * the string itself. Here a user costs its UTF-8 bytes + 1, 4 bytes per uid, and 12 bytes per
 * table slot (17–34 per user as the load goes from 0.7 to 0.35), for any uid below 2^32 − 1.
 * - Ids: records (one byte holding length − 1, then the UTF-8 bytes) appended to an arena of
 *   16 MiB chunks. A record never straddles chunks, so position = chunk × 2^24 + offset (40 bits).
 *   The arena never stores a record at position 0, so 0 marks a uid that was never assigned.
 * - Per uid, in pages of 2^20 uids allocated as uids appear: the low word of its record's
 *   position, and its high byte apart, in pages kept only once a position passes 4 GiB. Growing
 *   a page or adding one never copies the others.
 * - A hash table: open addressing, linear probing, power-of-two `Uint32Array` of slots of three
 *   words, the id's 32-bit hash, its uid + 1 (0 is empty) and the low word of its record's
 *   position, load ≤ 0.7, indexed by the hash's top bits. With the hash in the slot, a probe
 *   chain is walked without leaving the table: an id that is not there (every new user) costs the
 *   slots' cache line and nothing else, and doubling needs no per-uid read. With the position
 *   there too, a known id costs that line and its record's: the uid page is not read (until the
 *   arena passes 4 GiB and positions need their high byte). Because old slot i only feeds new
 *   slots near 2i, the new table is written nearly in order.
 *   The rehash is incremental: each add moves a few old slots, and until the old table is drained
 *   a lookup that misses the new one probes the old one too. Rehashing all at once read one
 *   stored hash per user at random, 74 ms at 1M users and ~10× that at 10M, stalling every
 *   membership answer on the loop (fuzz: a preview's stand-ins growing to 1M ids).
 *   Three-word slots against two (hash, uid + 1), in-process at 10M users, two runs each,
 *   alternated: 49.6 vs 42.9 B per user; batch lookups of known ids (10,000 random ids a call,
 *   median of 30 calls) 81–157 vs 110–250 ns. The uid page read was a third of a lookup.
 *   Two-word slots against one-word slots with the hash kept per uid, in-process at 10M users
 *   (two runs each, alternated): 44.7 vs 42.3 B per user; lookups of known ids 367–403 vs
 *   680–695 ns, of unknown ids 128–149 vs 316 ns (one cache line per chain instead of a random
 *   read per slot on it); entering users 338–379 vs 390–415 ns. The price is paid at the top
 *   too: while a doubling drains, both tables are held, and bench `directory` caught 50M users
 *   at 62.9 B each (45.3 with one-word slots).
 * - Hash: MurmurHash3 (x86, 32-bit) over the UTF-8 bytes, read four at a time from the scratch
 *   buffer. Every id is encoded with TextEncoder.encodeInto: a charCodeAt loop for ASCII ids with
 *   byte-at-a-time FNV-1a was measured slower (best of 15 × 1M lookups of dataset ids in a warm
 *   20k directory: 3.3–3.5M/s vs 4.1–4.4M/s for flat strings, 2.3M/s vs 2.8M/s for concatenated
 *   ones), so there is one path. Hashes depend on byte order; they never leave the process.
 * Small directories stay small: the first arena chunk and each uid page start at the initial
 * capacity and double up to their full size.
 * - Every assigned uid is also kept in a Roaring bitmap (EVERYONE's membership; not in a directory
 *   made with `everyone: false`, a set of distinct ids): uids are nearly
 *   dense, so it is mostly bitset containers (8 KiB per 65,536 uids, 0.125 B each), and expanding EVERYONE becomes a copy
 *   instead of a scan of the uid pages on the event loop.
 */
import { copyBytes, ViewCache } from "./byte-copy.js";
import type { MemberFilter } from "./member-filter.js";
import { RoaringBitmap32 } from "./roaring.js";

/** Bytes in an arena chunk; a position's low 24 bits are the offset inside its chunk. */
const CHUNK_BYTES = 2 ** 24;
/** 40-bit positions address 2^16 chunks (1 TiB). */
const MAX_CHUNKS = 2 ** 16;
const PAGE_BITS = 20;
const PAGE_SIZE = 2 ** PAGE_BITS;
const PAGE_MASK = PAGE_SIZE - 1;
/** Ids are 1 to 256 bytes of UTF-8, so a record's length fits one byte as length − 1. */
const MAX_ID_BYTES = 256;
/** uid + 1 must fit a Uint32Array slot. */
const MAX_UID = 2 ** 32 - 2;
const MAX_LOAD = 0.7;
/** A table slot's words: the id's hash, its uid + 1 (0: empty), and the low word of its record's position. */
const SLOT_WORDS = 3;
const ENTRY = 1;
const LOW = 2;
/**
 * Old slots each add moves during a rehash. A doubling starts at 0.7 × S users in S slots and the
 * next one comes 0.7 × S adds later, so any rate above S / (0.7 × S) ≈ 1.43 drains the old table
 * first; 4 drains it within S / 4 adds.
 */
const MOVES_PER_ADD = 4;
const MIN_SLOTS = 16;
/** With the u flag, a surrogate only matches when unpaired: such a string has no UTF-8 form. */
const LONE_SURROGATE = /\p{Cs}/u;

/** What lookupManyUtf8 writes for an id no user has (never a uid: uids stop at 2^32 − 2). */
export const NOT_FOUND = 2 ** 32 - 1;
/** Ids per lookupManyUtf8 group: enough independent reads to keep the memory system busy. */
const GROUP = 16;
/** murmur3Bytes reads words little-endian; murmur3 reads them in the host's order. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Options of a new directory. */
export interface UserDirectoryOptions {
  /** Users to make room for before the first growth (default 1024). */
  initialCapacity?: number;
  /**
   * Keep every assigned uid in a Roaring bitmap, for allUids and countExcept (default true). A
   * directory used only as a set of distinct ids turns it off: an N-API call per id it need not pay.
   */
  everyone?: boolean;
}

/** External ids ↔ uids for any number of users, in typed arrays. */
export class UserDirectory {
  private readonly arena: IdArena;
  private readonly uids: UidRecords;
  private slots: Uint32Array;
  /** The table before the last doubling while its slots are still being moved (null otherwise). */
  private old: Uint32Array | null = null;
  private oldShift = 0;
  /** The next old slot to move. */
  private moved = 0;
  /** A hash's home slot is `hash >>> shift`: its top bits. */
  private shift: number;
  /** The table doubles before holding more than this many users. */
  private limit: number;
  private count = 0;
  private bound = 0;
  private readonly assigned: RoaringBitmap32 | null;
  /** The id being looked up or added, as UTF-8 (and as words, for hashing); its length, −1 if it cannot be an id. */
  private readonly words = new Uint32Array(MAX_ID_BYTES / 4);
  private readonly scratch = new Uint8Array(this.words.buffer);
  private readonly scratchView = new DataView(this.words.buffer);
  /** The bytes of the last lookupManyUtf8 or intern, and a view of them for the arena's comparisons. */
  private viewed: Uint8Array | null = null;
  private view: DataView<ArrayBufferLike> = this.scratchView;
  private scratchLength = 0;
  /** Per id of a lookupManyUtf8 or addStoredMany group: its hash, and its home slot's entry (read ahead, so the slot is in cache). */
  private readonly hashes = new Uint32Array(GROUP);
  private readonly entries = new Uint32Array(GROUP);
  /** Per id of a group: the first slot on its probe chain holding its hash, −1 when none does. */
  private readonly found = new Int32Array(GROUP);
  /** Per id of a group: the record position of the uid in its found slot, else 0. */
  private readonly candidates = new Float64Array(GROUP);
  /** Per id of a lookupManyUtf8 group: its index in the call's ids. */
  private readonly picks = new Uint32Array(GROUP);
  /** A view of the array copyId last copied to (it is called per id with one target). */
  private readonly targets = new ViewCache();

  constructor(options: UserDirectoryOptions = {}) {
    const capacity = Math.max(1, Math.floor(options.initialCapacity ?? 1024));
    this.arena = new IdArena(Math.min(CHUNK_BYTES, nextPowerOfTwo(capacity * 32)));
    this.uids = new UidRecords(Math.min(PAGE_SIZE, nextPowerOfTwo(capacity)));
    const slotCount = Math.max(MIN_SLOTS, nextPowerOfTwo(Math.ceil(capacity / MAX_LOAD)));
    this.slots = new Uint32Array(SLOT_WORDS * slotCount);
    this.shift = Math.clz32(slotCount) + 1;
    this.limit = Math.floor(slotCount * MAX_LOAD);
    this.assigned = options.everyone === false ? null : new RoaringBitmap32();
  }

  /** How many users are known. */
  get size(): number {
    return this.count;
  }

  /** One more than the largest uid assigned (0 when empty): every uid lies below it. */
  get uidBound(): number {
    return this.bound;
  }

  /** Whether a doubling is still moving slots out of the old table (a lookup that misses the new one probes the old one too). */
  get rehashing(): boolean {
    return this.old !== null;
  }

  /**
   * Moves up to `count` slots of the doubling under way to the new table; returns whether any are
   * left. Adds move a few each, so a directory that stops growing just after doubling needs its
   * owner to finish the move off the request path: until then most ids are found in the old table,
   * one id at a time, after missing in the new one.
   */
  settle(count: number): boolean {
    this.move(count);
    return this.old !== null;
  }

  /** The uid of `externalId`, or undefined when the user has never been seen. */
  lookup(externalId: string): number | undefined {
    const hash = this.encode(externalId);
    if (this.scratchLength < 0) return undefined;
    const entry = this.find(hash);
    return entry === 0 ? undefined : entry - 1;
  }

  /** Every assigned uid, as a bitmap the caller owns (a copy: later adds do not change it). */
  allUids(): RoaringBitmap32 {
    return this.everyone().clone();
  }

  /** How many assigned uids `excluded` does not hold (EVERYONE − excluded), without building anything. */
  countExcept(excluded: RoaringBitmap32): number {
    return this.everyone().andNotCardinality(excluded);
  }

  private everyone(): RoaringBitmap32 {
    if (this.assigned === null) throw new Error("user directory: made with everyone: false, it keeps no bitmap of its uids");
    return this.assigned;
  }

  /**
   * The uid of the id whose UTF-8 bytes are `bytes[start, end)`, or undefined when the user has
   * never been seen or the bytes cannot be an id (empty, over 256 bytes). No string is made. The
   * bytes must be valid UTF-8 (text read from the store is).
   */
  lookupUtf8(bytes: Uint8Array, start: number, end: number): number | undefined {
    const length = end - start;
    if (length <= 0 || length > MAX_ID_BYTES) return undefined;
    const scratch = this.scratch;
    for (let i = 0; i < length; i++) scratch[i] = bytes[start + i] ?? 0;
    this.scratchLength = length;
    const entry = this.find(murmur3(this.words, length));
    return entry === 0 ? undefined : entry - 1;
  }

  /**
   * Looks up ids `from … to − 1` of a run of UTF-8 ids laid back to back in `bytes`, id i ending
   * at `ends[i]` and starting where id i − 1 ends (id 0 at 0), and writes each one's uid, or
   * NOT_FOUND, to `out[i]`. Same answers as lookupUtf8, faster: at millions of users nearly every
   * lookup misses the CPU caches, so ids go through in small groups — hash them all, then read
   * all their home slots, then their records — and each step's reads overlap instead of waiting
   * on one another. With `hashesOut`, id i's hashUtf8 goes to `hashesOut[i]` too, for intern and
   * addStoredMany to reuse (a new user's id is otherwise hashed three times on its way in).
   * With `filter` (the members of one segment), an id whose hash it rules out gets NOT_FOUND
   * without a lookup: that uid is of no interest to a caller asking about that segment.
   */
  lookupManyUtf8(
    bytes: Uint8Array,
    ends: Uint32Array,
    from: number,
    to: number,
    out: Uint32Array,
    hashesOut?: Uint32Array,
    filter?: MemberFilter,
  ): void {
    if (!LITTLE_ENDIAN) {
      for (let i = from; i < to; i++) {
        const start = i === 0 ? 0 : (ends[i - 1] ?? 0);
        const hash = this.hashUtf8(bytes, start, ends[i] ?? 0);
        if (hashesOut !== undefined) hashesOut[i] = hash;
        out[i] = filter?.mayContain(hash) === false ? NOT_FOUND : (this.lookupUtf8(bytes, start, ends[i] ?? 0) ?? NOT_FOUND);
      }
      return;
    }
    const { hashes, entries, found, candidates, picks, slots, arena } = this;
    const view = this.viewOf(bytes);
    const shift = this.shift;
    const mask = slots.length / SLOT_WORDS - 1;
    for (let next = from; next < to; ) {
      // A group of ids that may be there: one that cannot be an id, or that the filter rules out,
      // is answered at once, and the group fills up with the ids after it.
      let count = 0;
      for (; count < GROUP && next < to; next++) {
        const start = next === 0 ? 0 : (ends[next - 1] ?? 0);
        const length = (ends[next] ?? 0) - start;
        const valid = length > 0 && length <= MAX_ID_BYTES;
        const hash = valid ? murmur3Bytes(bytes, start, length) : 0;
        if (hashesOut !== undefined) hashesOut[next] = hash;
        if (!valid || (filter !== undefined && !filter.mayContain(hash))) out[next] = NOT_FOUND;
        else {
          picks[count] = next;
          hashes[count++] = hash;
        }
      }
      // The home slots first: each a cache miss at millions of users, all of them in flight at once.
      for (let k = 0; k < count; k++) entries[k] = slots[((hashes[k] ?? 0) >>> shift) * SLOT_WORDS + ENTRY] ?? 0;
      // Then along each probe chain, in the slots alone (the hash is beside each uid), to the first
      // slot holding the id's hash: an id that is not there costs no read outside the table.
      for (let k = 0; k < count; k++) {
        const hash = hashes[k] ?? 0;
        let at = hash >>> shift;
        for (;;) {
          if ((slots[at * SLOT_WORDS + ENTRY] ?? 0) === 0) {
            at = -1;
            break;
          }
          if (slots[at * SLOT_WORDS] === hash) break;
          at = (at + 1) & mask;
        }
        found[k] = at;
      }
      // That slot's record position (beside the uid), then the record: one more miss, overlapped.
      for (let k = 0; k < count; k++) {
        const at = found[k] ?? -1;
        candidates[k] = at < 0 ? 0 : this.slotPosition(slots, at);
      }
      arena.touch(candidates, count);
      // While a doubling drains, an id the new table lacks is looked for in the old one: read those
      // home slots ahead too (a new user misses both, and one at a time the reads waited in turn).
      const old = this.old;
      if (old !== null) {
        const oldShift = this.oldShift;
        for (let k = 0; k < count; k++) {
          if ((found[k] ?? -1) < 0) entries[k] = old[((hashes[k] ?? 0) >>> oldShift) * SLOT_WORDS + ENTRY] ?? 0;
        }
      }
      for (let k = 0; k < count; k++) {
        const i = picks[k] ?? 0;
        const start = i === 0 ? 0 : (ends[i - 1] ?? 0);
        const length = (ends[i] ?? 0) - start;
        const hash = hashes[k] ?? 0;
        const at = found[k] ?? -1;
        if (at < 0) out[i] = NOT_FOUND;
        else if (arena.equals(candidates[k] ?? 0, view, start, length)) out[i] = (slots[at * SLOT_WORDS + ENTRY] ?? 0) - 1;
        // Two ids with one 32-bit hash: rare, so the rest of the chain is walked one slot at a time.
        else out[i] = this.probeUtf8(slots, hash, at + 1, view, start, length);
        if (out[i] === NOT_FOUND && old !== null) out[i] = this.probeUtf8(old, hash, hash >>> this.oldShift, view, start, length);
      }
    }
  }

  /**
   * Writes hashUtf8 of the id of each of `uids[0, count)` to `out`: what a MemberFilter of those
   * users is made of. Returns how many of them have no id here (their hash is written as 0).
   * Grouped like lookupManyUtf8, so the reads of the uids' records overlap.
   */
  hashesOf(uids: Uint32Array, count: number, out: Uint32Array): number {
    const { candidates, arena } = this;
    let unknown = 0;
    for (let first = 0; first < count; first += GROUP) {
      const size = Math.min(GROUP, count - first);
      for (let k = 0; k < size; k++) {
        const uid = uids[first + k] ?? 0;
        candidates[k] = isUid(uid) ? this.uids.position(uid) : 0;
      }
      arena.touch(candidates, size);
      for (let k = 0; k < size; k++) {
        const position = candidates[k] ?? 0;
        if (position === 0) unknown++;
        out[first + k] = position === 0 ? 0 : arena.hash(position, this);
      }
    }
    return unknown;
  }

  /**
   * The hash the table files the id `bytes[start, end)` under (1–256 bytes of UTF-8): what
   * lookupManyUtf8 hands out, and what intern and addStoredMany take instead of hashing again. A
   * wrong one would file the id where no lookup finds it, so only this module's hashes may be given.
   */
  hashUtf8(bytes: Uint8Array, start: number, end: number): number {
    if (LITTLE_ENDIAN) return murmur3Bytes(bytes, start, end - start);
    for (let i = start; i < end; i++) this.scratch[i - start] = bytes[i] ?? 0;
    return murmur3(this.words, end - start);
  }

  /** Whether `uid` has been assigned (without decoding its id). */
  has(uid: number): boolean {
    return isUid(uid) && this.uids.position(uid) !== 0;
  }

  /** The external id of `uid`, or undefined for a uid never assigned. */
  externalId(uid: number): string | undefined {
    if (!isUid(uid)) return undefined;
    const position = this.uids.position(uid);
    return position === 0 ? undefined : this.arena.decode(position);
  }

  /**
   * Copies the UTF-8 bytes of `uid`'s external id to `target` at `at` and returns where they end
   * (`at` itself for a uid never assigned). No string is made; `target` needs 256 bytes of room.
   */
  copyId(uid: number, target: Uint8Array, at: number): number {
    if (!isUid(uid)) return at;
    const position = this.uids.position(uid);
    return position === 0 ? at : this.arena.copy(position, this.targets.of(target), at);
  }

  /**
   * Records that `externalId` has `uid`. Idempotent for the same pair; a conflicting pair means
   * the store and memory disagree, which must never be papered over.
   */
  add(uid: number, externalId: string): void {
    const hash = this.encode(externalId);
    if (this.scratchLength < 0) {
      const shown = externalId.length > 64 ? `${externalId.slice(0, 64)}…` : externalId;
      throw new RangeError(`user directory: external id ${JSON.stringify(shown)} is not 1–256 bytes of UTF-8`);
    }
    this.insertScratch(uid, hash);
  }

  /**
   * add() for the id `bytes[start, end)` (valid UTF-8, no string made), read from the store,
   * where each id has exactly one uid: a uid already assigned is skipped (it names this id), and
   * the slot is the first empty one, found without comparing ids. How start-up and catch-up enter
   * millions of users: comparing the id with each slot's on the way would read each one's record.
   */
  addStoredUtf8(uid: number, bytes: Uint8Array, start: number, end: number): void {
    if (!isUid(uid)) throw new RangeError(`user directory: uid ${uid} is not an integer in [0, 2^32 − 2]`);
    if (this.uids.position(uid) !== 0) return;
    const length = end - start;
    if (length <= 0 || length > MAX_ID_BYTES) throw new RangeError(`user directory: uid ${uid}'s id is ${length} bytes, not 1–256`);
    if (this.count >= this.limit) this.grow();
    let hash: number;
    if (LITTLE_ENDIAN) hash = murmur3Bytes(bytes, start, length);
    else {
      this.scratch.set(bytes.subarray(start, end));
      hash = murmur3(this.words, length);
    }
    const position = this.arena.append(this.viewOf(bytes), length, start);
    this.uids.set(uid, position);
    this.place(uid + 1, hash, position % 2 ** 32);
    this.entered(uid);
  }

  /**
   * addStoredUtf8 for a run of stored ids laid back to back in `bytes` (id i ends at `ends[i]` and
   * starts where id i − 1 ends; an id of length 0 is a uid never assigned, skipped), id i taking
   * uid `firstUid + i`, for i in `from … to − 1`. Same result, faster: like lookupManyUtf8 it
   * hashes 16 ids, then reads their 16 home slots, then places them, so the cache misses of the
   * reads overlap instead of coming one after another (start-up enters every user this way).
   * `known[i]`, where given: id i's hashUtf8, already computed.
   */
  addStoredMany(firstUid: number, bytes: Uint8Array, ends: Uint32Array, from: number, to: number, known?: Uint32Array): void {
    const startOf = (i: number) => (i === 0 ? 0 : (ends[i - 1] ?? 0));
    if (!LITTLE_ENDIAN) {
      for (let i = from; i < to; i++) if ((ends[i] ?? 0) > startOf(i)) this.addStoredUtf8(firstUid + i, bytes, startOf(i), ends[i] ?? 0);
      return;
    }
    const { hashes, entries } = this;
    const view = this.viewOf(bytes);
    for (let first = from; first < to; first += GROUP) {
      const count = Math.min(GROUP, to - first);
      // Room for the whole group first, so the slots read below are in the table placed into.
      while (this.count + count > this.limit) this.grow();
      let skip = 0;
      for (let k = 0; k < count; k++) {
        const i = first + k;
        const uid = firstUid + i;
        const length = (ends[i] ?? 0) - startOf(i);
        if (!isUid(uid)) throw new RangeError(`user directory: uid ${uid} is not an integer in [0, 2^32 − 2]`);
        if (length < 0 || length > MAX_ID_BYTES) throw new RangeError(`user directory: uid ${uid}'s id is ${length} bytes, not 1–256`);
        // Nothing to enter for a hole, or for a uid already entered (it names this same id).
        if (length === 0 || this.uids.position(uid) !== 0) skip |= 1 << k;
        else hashes[k] = known?.[i] ?? murmur3Bytes(bytes, startOf(i), length);
      }
      const shift = this.shift;
      for (let k = 0; k < count; k++) entries[k] = this.slots[((hashes[k] ?? 0) >>> shift) * SLOT_WORDS + ENTRY] ?? 0;
      for (let k = 0; k < count; k++) {
        if ((skip >>> k) & 1) continue;
        const i = first + k;
        const uid = firstUid + i;
        const start = startOf(i);
        const hash = hashes[k] ?? 0;
        const position = this.arena.append(view, (ends[i] ?? 0) - start, start);
        this.uids.set(uid, position);
        this.place(uid + 1, hash, position % 2 ** 32);
        this.entered(uid, false);
      }
      this.assignRuns(firstUid + first, count, skip);
    }
  }

  /**
   * Adds to the bitmap of assigned uids the uids `firstUid + k` of a group, k < count, whose bit
   * in `skip` is clear, one range per run of them: a native add per uid cost 46–76 ns in isolation,
   * and a group of 16 is nearly always one run.
   */
  private assignRuns(firstUid: number, count: number, skip: number): void {
    const assigned = this.assigned;
    if (assigned === null) return;
    let k = 0;
    while (k < count) {
      while (k < count && (skip >>> k) & 1) k++;
      const from = k;
      while (k < count && !((skip >>> k) & 1)) k++;
      if (k > from) assigned.addRange(firstUid + from, firstUid + k);
    }
  }

  /**
   * The uid of the id `bytes[start, end)`, giving it the next uid (`size`) when it has none: for a
   * directory used as a set of distinct ids numbered in arrival order. One probe, where a lookup
   * then an add would take two. Uids must be only ever handed out this way. `hash`: the id's
   * hashUtf8, when the caller has it.
   */
  intern(bytes: Uint8Array, start: number, end: number, hash?: number): number {
    const length = end - start;
    if (length <= 0 || length > MAX_ID_BYTES) throw new RangeError(`user directory: an id of ${length} bytes, not 1–256`);
    if (LITTLE_ENDIAN) return this.internInPlace(bytes, start, length, hash ?? murmur3Bytes(bytes, start, length));
    this.scratch.set(bytes.subarray(start, end));
    this.scratchLength = length;
    const hashed = murmur3(this.words, length);
    const entry = this.find(hashed);
    if (entry !== 0) return entry - 1;
    const uid = this.count;
    this.insertScratch(uid, hashed);
    return uid;
  }

  /**
   * intern, reading the id where it lies: hashed in place, one probe, and no view or copy made
   * per id (a per-request set of 100,000 new users made 100,000 of each, and the GC paid for them).
   */
  private internInPlace(bytes: Uint8Array, start: number, length: number, hash: number): number {
    const view = this.viewOf(bytes);
    let uid = this.probeUtf8(this.slots, hash, hash >>> this.shift, view, start, length);
    const old = this.old;
    if (uid === NOT_FOUND && old !== null) uid = this.probeUtf8(old, hash, hash >>> this.oldShift, view, start, length);
    if (uid !== NOT_FOUND) return uid;
    uid = this.count;
    if (!isUid(uid) || this.uids.position(uid) !== 0)
      throw new Error(`user directory: uid ${uid} is taken; intern must hand out every uid`);
    if (this.count >= this.limit) this.grow();
    const position = this.arena.append(view, length, start);
    this.uids.set(uid, position);
    this.place(uid + 1, hash, position % 2 ** 32);
    this.entered(uid);
    return uid;
  }

  /** Enters the scratch id, hashed to `hash`, with `uid` (idempotent; a conflicting pair throws). */
  private insertScratch(uid: number, hash: number): void {
    if (!isUid(uid)) throw new RangeError(`user directory: uid ${uid} is not an integer in [0, 2^32 − 2]`);
    const entry = this.find(hash);
    if (entry === uid + 1) return;
    const shown = () => JSON.stringify(decoder.decode(this.scratch.subarray(0, this.scratchLength)));
    if (entry !== 0) throw new Error(`user directory conflict: ${shown()} has uid ${entry - 1}, not ${uid}`);
    const taken = this.uids.position(uid);
    if (taken !== 0) {
      throw new Error(`user directory conflict: uid ${uid} has ${JSON.stringify(this.arena.decode(taken))}, not ${shown()}`);
    }
    if (this.count >= this.limit) this.grow();
    const position = this.arena.append(this.scratchView, this.scratchLength);
    this.uids.set(uid, position);
    this.place(uid + 1, hash, position % 2 ** 32);
    this.entered(uid);
  }

  /**
   * The record position of the uid in occupied slot `at`: the slot's low word alone until the arena
   * passes 4 GiB, when the uid pages supply the high byte too.
   */
  private slotPosition(slots: Uint32Array, at: number): number {
    if (this.uids.hasHighBytes) return this.uids.position((slots[at * SLOT_WORDS + ENTRY] ?? 0) - 1);
    return slots[at * SLOT_WORDS + LOW] ?? 0;
  }

  /**
   * Puts `entry` (uid + 1), with its hash and the low word of its record's position, in the first
   * empty slot from `hash`'s home: only for an id the table cannot hold yet.
   */
  private place(entry: number, hash: number, low: number): void {
    const slots = this.slots;
    const mask = slots.length / SLOT_WORDS - 1;
    let slot = hash >>> this.shift;
    while (slots[slot * SLOT_WORDS + ENTRY] !== 0) slot = (slot + 1) & mask;
    slots[slot * SLOT_WORDS] = hash;
    slots[slot * SLOT_WORDS + ENTRY] = entry;
    slots[slot * SLOT_WORDS + LOW] = low;
  }

  /** Counts a uid just placed, and moves on any rehash under way. */
  private entered(uid: number, assign = true): void {
    this.count++;
    if (assign) this.assigned?.add(uid);
    if (uid >= this.bound) this.bound = uid + 1;
    if (this.old !== null) this.move(MOVES_PER_ADD);
  }

  /** Total bytes held (typed arrays and the uid bitmap), for memory reporting. */
  byteSize(): number {
    return (
      this.slots.byteLength +
      (this.old?.byteLength ?? 0) +
      this.uids.byteSize() +
      this.arena.byteSize() +
      (this.assigned?.getSerializationSizeInBytes(true) ?? 0)
    );
  }

  /** The entry (uid + 1) of the scratch id, hashed to `hash`, or 0 when it has none. */
  private find(hash: number): number {
    const entry = this.probe(this.slots, hash >>> this.shift, hash);
    const old = this.old;
    return entry !== 0 || old === null ? entry : this.probe(old, hash >>> this.oldShift, hash);
  }

  /** The entry of the scratch id in `slots` probing from `slot`, or 0 at the first empty slot. */
  private probe(slots: Uint32Array, slot: number, hash: number): number {
    const mask = slots.length / SLOT_WORDS - 1;
    for (let at = slot; ; at = (at + 1) & mask) {
      const entry = slots[at * SLOT_WORDS + ENTRY] ?? 0;
      if (entry === 0) return 0;
      // The hash beside the uid rules out nearly every other id without reading anything else.
      if (slots[at * SLOT_WORDS] === hash && this.arena.equals(this.slotPosition(slots, at), this.scratchView, 0, this.scratchLength))
        return entry;
    }
  }

  /** probe for the id at `[start, start + length)` of `view` with `hash` in `slots`, from `slot` on: its uid, or NOT_FOUND. */
  private probeUtf8(slots: Uint32Array, hash: number, slot: number, view: DataView, start: number, length: number): number {
    const mask = slots.length / SLOT_WORDS - 1;
    for (let at = slot & mask; ; at = (at + 1) & mask) {
      const entry = slots[at * SLOT_WORDS + ENTRY] ?? 0;
      if (entry === 0) return NOT_FOUND;
      if (slots[at * SLOT_WORDS] === hash && this.arena.equals(this.slotPosition(slots, at), view, start, length)) return entry - 1;
    }
  }

  /**
   * A DataView of `bytes`, made once per array: intern is called per id with the same request
   * bytes. It keeps the last array alive until the next call, which costs that request's size.
   */
  private viewOf(bytes: Uint8Array): DataView {
    if (bytes !== this.viewed) {
      this.viewed = bytes;
      this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    }
    return this.view;
  }

  /** Doubles the table; its uids move over a few at a time as users are added (see move). */
  private grow(): void {
    // Unreachable at MOVES_PER_ADD ≥ 2 with adds alone; kept so a doubling never drops a table.
    if (this.old !== null) this.move(this.old.length / SLOT_WORDS);
    this.old = this.slots;
    this.oldShift = this.shift;
    this.moved = 0;
    this.slots = new Uint32Array(this.old.length * 2);
    this.shift--;
    this.limit = Math.floor((this.slots.length / SLOT_WORDS) * MAX_LOAD);
  }

  /**
   * Re-places the uids of the next `count` old slots by the hashes beside them. The old table keeps
   * them (lookups find them in the new one first), so its probe chains stay whole until it goes.
   */
  private move(count: number): void {
    const old = this.old;
    if (old === null) return;
    const slotCount = old.length / SLOT_WORDS;
    const end = Math.min(slotCount, this.moved + count);
    for (let i = this.moved; i < end; i++) {
      const entry = old[i * SLOT_WORDS + ENTRY] ?? 0;
      if (entry !== 0) this.place(entry, old[i * SLOT_WORDS] ?? 0, old[i * SLOT_WORDS + LOW] ?? 0);
    }
    this.moved = end;
    if (end === slotCount) this.old = null;
  }

  /** Writes `id` as UTF-8 into the scratch buffer and returns its hash; scratchLength −1 if it cannot be an id. */
  private encode(id: string): number {
    // UTF-8 never takes fewer bytes than UTF-16 units, so a longer string cannot be an id.
    if (id.length === 0 || id.length > MAX_ID_BYTES) {
      this.scratchLength = -1;
      return 0;
    }
    const { read, written } = encoder.encodeInto(id, this.scratch);
    // A partial read means more than 256 bytes; a lone surrogate would be stored as U+FFFD (and
    // only a non-ASCII string, one with written ≠ read, can hold one).
    if (read < id.length || !hasUtf8Form(id, written)) {
      this.scratchLength = -1;
      return 0;
    }
    this.scratchLength = written;
    return murmur3(this.words, written);
  }
}

/** Id records in fixed-size chunks: appending never moves what is stored. */
class IdArena {
  private readonly chunks: Uint8Array[];
  /** A DataView of each chunk, for equals. */
  private readonly views: DataView[];
  /** Next free byte of the last chunk; byte 0 of chunk 0 stays unused so no record is at position 0. */
  private fill = 1;
  /** What touch() read, kept only so the compiler cannot drop the reads. */
  touched = 0;

  constructor(firstChunkBytes: number) {
    const first = new Uint8Array(firstChunkBytes);
    this.chunks = [first];
    this.views = [new DataView(first.buffer)];
  }

  /** Stores the `length` bytes at `from` of `bytes` and returns the record's position. */
  append(bytes: DataView, length: number, from = 0): number {
    let chunk = this.chunks[this.chunks.length - 1] ?? this.roomFor(length + 1);
    if (this.fill + 1 + length > chunk.length) chunk = this.roomFor(length + 1);
    const start = this.fill;
    chunk[start] = length - 1;
    copyBytes(bytes, from, this.views[this.chunks.length - 1] as DataView, start + 1, length);
    this.fill = start + 1 + length;
    return (this.chunks.length - 1) * CHUNK_BYTES + start;
  }

  /**
   * Whether the record at `position` holds exactly the `length` bytes at `at` of `other`. Compared
   * four bytes at a time through DataViews: a byte loop was a quarter of a batch lookup's time
   * even with every record in cache (dataset ids of 10–36 bytes).
   */
  equals(position: number, other: DataView, at: number, length: number): boolean {
    const index = Math.floor(position / CHUNK_BYTES);
    const chunk = this.views[index];
    const start = position - index * CHUNK_BYTES + 1;
    if (chunk === undefined || chunk.getUint8(start - 1) !== length - 1) return false;
    let i = 0;
    for (; i + 4 <= length; i += 4) if (chunk.getInt32(start + i) !== other.getInt32(at + i)) return false;
    for (; i < length; i++) if (chunk.getUint8(start + i) !== other.getUint8(at + i)) return false;
    return true;
  }

  /**
   * Reads the length byte of each record at `positions[0, count)` (0: none): issued back to back,
   * the reads' cache misses overlap, and the comparisons after them hit.
   */
  touch(positions: Float64Array, count: number): void {
    let sum = 0;
    for (let k = 0; k < count; k++) {
      const position = positions[k] ?? 0;
      const index = Math.floor(position / CHUNK_BYTES);
      sum += this.chunks[index]?.[position - index * CHUNK_BYTES] ?? 0;
    }
    this.touched = sum;
  }

  /** Copies the id stored at `position` to `target` at `at`; returns where it ends. */
  copy(position: number, target: DataView, at: number): number {
    const index = Math.floor(position / CHUNK_BYTES);
    const chunk = this.views[index];
    if (chunk === undefined) throw new RangeError(`user directory: no record at ${position}`);
    const start = position - index * CHUNK_BYTES + 1;
    const length = chunk.getUint8(start - 1) + 1;
    copyBytes(chunk, start, target, at, length);
    return at + length;
  }

  /** The directory's hash of the id stored at `position`, read in place. */
  hash(position: number, directory: UserDirectory): number {
    const index = Math.floor(position / CHUNK_BYTES);
    const chunk = this.chunks[index] ?? new Uint8Array(1);
    const start = position - index * CHUNK_BYTES + 1;
    return directory.hashUtf8(chunk, start, start + (chunk[start - 1] ?? 0) + 1);
  }

  /** The id stored at `position`. */
  decode(position: number): string {
    const index = Math.floor(position / CHUNK_BYTES);
    const chunk = this.chunks[index] ?? new Uint8Array(1);
    const start = position - index * CHUNK_BYTES + 1;
    return decoder.decode(chunk.subarray(start, start + (chunk[start - 1] ?? 0) + 1));
  }

  /** Bytes allocated, used or not. */
  byteSize(): number {
    let bytes = 0;
    for (const chunk of this.chunks) bytes += chunk.byteLength;
    return bytes;
  }

  /** A chunk with `need` free bytes at `fill`: the small first chunk doubled, or a new full one. */
  private roomFor(need: number): Uint8Array {
    const last = this.chunks.length - 1;
    const current = this.chunks[last] ?? new Uint8Array(0);
    if (this.fill + need <= CHUNK_BYTES) {
      const grown = new Uint8Array(Math.min(CHUNK_BYTES, Math.max(current.length * 2, nextPowerOfTwo(this.fill + need))));
      grown.set(current.subarray(0, this.fill));
      this.chunks[last] = grown;
      this.views[last] = new DataView(grown.buffer);
      return grown;
    }
    if (this.chunks.length === MAX_CHUNKS) throw new RangeError("user directory: id arena is full (1 TiB)");
    const fresh = new Uint8Array(CHUNK_BYTES);
    this.chunks.push(fresh);
    this.views.push(new DataView(fresh.buffer));
    this.fill = 0;
    return fresh;
  }
}

/**
 * Per uid: its record position (0 = never assigned), in pages of 2^20 uids. Exported for its tests.
 * A position's high byte is 0 until the arena passes 4 GiB (~170M ids of 24 bytes), so a page
 * keeps high bytes only once one of its uids has one: that saves a byte per user and, in a batch
 * lookup at millions of users, a cache miss per id.
 */
export class UidRecords {
  /** Per page: the position's low word for each uid. */
  private readonly lows: (Uint32Array | undefined)[] = [];
  /** Per page: the position's high byte for each uid, or undefined while every one is 0. */
  private readonly highs: (Uint8Array | undefined)[] = [];
  /** Whether any position has a high byte: until one does, a position's low word is all of it. */
  hasHighBytes = false;

  constructor(private readonly firstPageSize: number) {}

  /** The record position of `uid`, 0 when it was never assigned. */
  position(uid: number): number {
    const page = uid >>> PAGE_BITS;
    const index = uid & PAGE_MASK;
    const low = this.lows[page]?.[index];
    if (low === undefined) return 0;
    const highs = this.highs[page];
    return highs === undefined ? low : (highs[index] ?? 0) * 2 ** 32 + low;
  }

  /** Assigns `uid` its position. */
  set(uid: number, position: number): void {
    const page = uid >>> PAGE_BITS;
    const index = uid & PAGE_MASK;
    let lows = this.lows[page];
    if (lows === undefined || index >= lows.length) lows = this.grow(page, index);
    lows[index] = position % 2 ** 32;
    const high = Math.floor(position / 2 ** 32);
    let highs = this.highs[page];
    if (highs === undefined && high !== 0) {
      highs = new Uint8Array(lows.length);
      this.hasHighBytes = true;
      while (this.highs.length <= page) this.highs.push(undefined);
      this.highs[page] = highs;
    }
    if (highs !== undefined) highs[index] = high;
  }

  /** Bytes allocated, used or not. */
  byteSize(): number {
    let bytes = 0;
    for (const page of this.lows) bytes += page?.byteLength ?? 0;
    for (const page of this.highs) bytes += page?.byteLength ?? 0;
    return bytes;
  }

  /** Page `page`, grown to hold `index`: a page starts small and doubles up to 2^20 uids. */
  private grow(page: number, index: number): Uint32Array {
    const lows = this.lows[page];
    const highs = this.highs[page];
    const size = Math.min(PAGE_SIZE, Math.max((lows?.length ?? 0) * 2, this.firstPageSize, nextPowerOfTwo(index + 1)));
    const grownLows = new Uint32Array(size);
    if (lows !== undefined) grownLows.set(lows);
    // Extended one slot at a time so the page list stays a dense array rather than a dictionary.
    while (this.lows.length <= page) this.lows.push(undefined);
    this.lows[page] = grownLows;
    if (highs !== undefined) {
      const grownHighs = new Uint8Array(size);
      grownHighs.set(highs);
      this.highs[page] = grownHighs;
    }
    return grownLows;
  }
}

function isUid(uid: number): boolean {
  return Number.isInteger(uid) && uid >= 0 && uid <= MAX_UID;
}

/**
 * Whether `id`, whose UTF-8 encoding took `utf8Length` bytes, has a UTF-8 form at all: an encoder
 * writes a lone surrogate as U+FFFD, another id. Only a non-ASCII string (more bytes than UTF-16
 * units) can hold one, so the regular expression runs only for those.
 */
export function hasUtf8Form(id: string, utf8Length: number): boolean {
  return utf8Length === id.length || !LONE_SURROGATE.test(id);
}

/** The 32-bit hash the table files `id` under (hashUtf8 of its bytes): exported so tests can make ids that collide. */
export function idHash(id: string): number {
  const bytes = encoder.encode(id);
  if (LITTLE_ENDIAN) return murmur3Bytes(bytes, 0, bytes.length);
  const words = new Uint32Array(MAX_ID_BYTES / 4);
  new Uint8Array(words.buffer).set(bytes);
  return murmur3(words, bytes.length);
}

/** MurmurHash3_x86_32 (seed 0) of the first `length` bytes of `words`. */
function murmur3(words: Uint32Array, length: number): number {
  let h = 0;
  const whole = length >>> 2;
  for (let i = 0; i < whole; i++) {
    h ^= scramble(words[i] ?? 0);
    h = (Math.imul((h << 13) | (h >>> 19), 5) + 0xe6546b64) | 0;
  }
  // The bytes past `length` are left over from longer ids: mask them off. They are the word's
  // high-order bytes on a little-endian host, its low-order ones on a big-endian one.
  const tail = length & 3;
  const kept = LITTLE_ENDIAN ? 0xffffffff >>> (32 - 8 * tail) : (0xffffffff << (32 - 8 * tail)) >>> 0;
  if (tail !== 0) h ^= scramble((words[whole] ?? 0) & kept);
  // fmix32: every input bit reaches the top bits, which choose the slot.
  h ^= length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** murmur3 of `bytes[start, start + length)`, read in place (the same hash on a little-endian host). */
function murmur3Bytes(bytes: Uint8Array, start: number, length: number): number {
  let h = 0;
  const whole = start + (length & ~3);
  let p = start;
  for (; p < whole; p += 4) {
    const word = (bytes[p] ?? 0) | ((bytes[p + 1] ?? 0) << 8) | ((bytes[p + 2] ?? 0) << 16) | ((bytes[p + 3] ?? 0) << 24);
    h ^= scramble(word);
    h = (Math.imul((h << 13) | (h >>> 19), 5) + 0xe6546b64) | 0;
  }
  const tail = length & 3;
  if (tail !== 0) {
    let word = bytes[p] ?? 0;
    if (tail > 1) word |= (bytes[p + 1] ?? 0) << 8;
    if (tail > 2) word |= (bytes[p + 2] ?? 0) << 16;
    h ^= scramble(word);
  }
  h ^= length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function scramble(word: number): number {
  const k = Math.imul(word, 0xcc9e2d51);
  return Math.imul((k << 15) | (k >>> 17), 0x1b873593);
}

function nextPowerOfTwo(n: number): number {
  return n <= 1 ? 1 : 2 ** Math.ceil(Math.log2(n));
}
