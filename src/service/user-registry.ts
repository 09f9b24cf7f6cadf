/**
 * Giving new users their uids, and keeping the in-memory directory level with the store's chunks
 * (src/store/user-store.ts). A change that names unknown ids collects them while it reads its
 * input — in `PendingUsers` (copied, for input that arrives in pieces: imports, query results) or
 * as `RequestNewIds` (left in place in a single request's bytes); inside its transaction
 * `register` takes the cluster-wide lock, reads the chunks other transactions committed meanwhile
 * (any process's), gives the ids still unknown the next uids and writes them as chunks — in the
 * same transaction as the membership change, so a rolled-back change leaves no users behind.
 * After COMMIT `enter` puts them in memory.
 */
import { nextSlice, sliceDue } from "../control/time-slice.js";
import { copyBytes, ViewCache } from "../index/byte-copy.js";
import { hasUtf8Form, NOT_FOUND, UserDirectory } from "../index/user-directory.js";
import type { Queryable } from "../store/database.js";
import type { UserIdChunk } from "../store/user-id-chunk.js";
import type { UserChunk, UserStore } from "../store/user-store.js";

/** Ids per stored chunk, and bytes: bounded rows, so no statement carries hundreds of MB. */
const CHUNK_IDS = 65_536;
const CHUNK_BYTES = 4 << 20;
/** Ids entered between two looks at the clock. */
const IDS_PER_CHECK = 256;
/**
 * Old table slots settle() moves per turn of the event loop: ~0.25 ms in-process (a 3M-user table
 * past its doubling takes ~62 ms in all), so a write it runs beside is slowed by a quarter at most.
 */
const SETTLE_SLOTS = 16_384;
/** settle() starts once no users have been entered for this long, and stops while any are. */
const SETTLE_QUIET_MS = 50;
/** The longest id. */
const MAX_ENTRY = 256;
const utf8 = new TextEncoder();

/** Distinct ids that were not in the directory when a change read them: what `register` numbers. */
export interface NewIds {
  /** The directory's uidBound before the first lookup that missed: while it has not moved, every id is still unknown. */
  readonly since: number;
  /** How many distinct ids. */
  readonly size: number;
  /** Copies id i's UTF-8 bytes to `out` at `at` (256 bytes of room); returns where they end. */
  copyId(i: number, out: Uint8Array, at: number): number;
  /** Id i's hashUtf8. */
  hashOf(i: number): number;
}

/**
 * The new ids of one request, read where they lie in its bytes (AddMembers, RemoveMembers): id k
 * is the request's id `indices[k]`. Nothing is copied until `register` packs the new users.
 */
export class RequestNewIds implements NewIds {
  /** The request's id bytes, and a view of the array copyId last copied to. */
  private readonly bytes: DataView;
  private readonly targets = new ViewCache();

  /**
   * @param indices the request's ids that the directory lacked, each id once (FirstOccurrences).
   * @param hashes every request id's hashUtf8, by its index in the request.
   */
  constructor(
    readonly since: number,
    private readonly chunk: UserIdChunk,
    private readonly indices: Uint32Array,
    private readonly hashes: Uint32Array,
  ) {
    this.bytes = new DataView(chunk.bytes.buffer, chunk.bytes.byteOffset, chunk.bytes.byteLength);
  }

  get size(): number {
    return this.indices.length;
  }

  copyId(k: number, out: Uint8Array, at: number): number {
    const { ends } = this.chunk;
    const i = this.indices[k] ?? 0;
    const start = i === 0 ? 0 : (ends[i - 1] ?? 0);
    const end = ends[i] ?? 0;
    copyBytes(this.bytes, start, this.targets.of(out), at, end - start);
    return at + end - start;
  }

  hashOf(k: number): number {
    return this.hashes[this.indices[k] ?? 0] ?? 0;
  }
}

/** Distinct ids not in the directory when a change read them, packed (no string kept per id). */
export class PendingUsers implements NewIds {
  /** Pending id i has "uid" i here: the directory's hash table doubles as the set that dedupes. */
  private set: UserDirectory | undefined;
  /** Pending id i's hashUtf8 at [i]: entering the new users after COMMIT reuses it. */
  private idHashes = new Uint32Array(0);

  /**
   * @param since the directory's uidBound before the first lookup that found an id missing: while
   *   it has not moved, no user has been added since, so every pending id is still unknown.
   * @param capacity how many ids to make room for once the first one comes (it grows as needed).
   */
  constructor(
    readonly since: number,
    private readonly capacity = 1024,
  ) {}

  /** The pending ids, id i with "uid" i (made on first use: most changes name no new user). */
  get ids(): UserDirectory {
    this.set ??= new UserDirectory({ initialCapacity: this.capacity, everyone: false });
    return this.set;
  }

  /** How many distinct ids are pending. */
  get size(): number {
    return this.set?.size ?? 0;
  }

  /** Adds an id given as a string (already validated); one with no UTF-8 form (a lone surrogate) is refused, as the directory refuses it. */
  add(id: string): void {
    const bytes = utf8.encode(id);
    if (!hasUtf8Form(id, bytes.length)) throw new RangeError("a user id with a lone surrogate has no UTF-8 form");
    this.addUtf8(bytes, 0, bytes.length);
  }

  /** Adds the id `bytes[start, end)` (valid UTF-8 of 1–256 bytes); `hash`, its hashUtf8 if the caller has it. */
  addUtf8(bytes: Uint8Array, start: number, end: number, hash?: number): void {
    const ids = this.ids;
    const known = hash ?? ids.hashUtf8(bytes, start, end);
    const size = ids.size;
    if (ids.intern(bytes, start, end, known) !== size) return;
    // Nothing else reads this set, so a doubling is finished a slice at a time instead of four old
    // slots per add: until it is, every new id probes the old table too (an import of 2M new users
    // spent ~10% of its busy time there).
    if ((size & 255) === 255 && ids.rehashing) ids.settle(SETTLE_SLOTS);
    if (size === this.idHashes.length) {
      const grown = new Uint32Array(Math.max(1, this.capacity, 2 * size));
      grown.set(this.idHashes);
      this.idHashes = grown;
    }
    this.idHashes[size] = known;
  }

  /** Pending id i's hashUtf8. */
  hashOf(i: number): number {
    return this.idHashes[i] ?? 0;
  }

  copyId(i: number, out: Uint8Array, at: number): number {
    return this.ids.copyId(i, out, at);
  }
}

/** A chunk a transaction stored, with its ids' hashUtf8 (per uid, as lengths) so entering them does not hash again. */
export interface CreatedChunk extends UserChunk {
  hashes: Uint32Array;
}

/** New users a transaction stored, to enter the directory after its COMMIT: the chunks it wrote. */
export type CreatedUsers = readonly CreatedChunk[];

/** What `register` did: per PendingUsers given, the uid of its id i at [i]; and the users it created. */
export interface Registered {
  uids: Uint32Array[];
  created: CreatedUsers;
}

/** The directory's persistence: start-up load, catch-up, and new uids. */
export class UserRegistry {
  /**
   * Where chunks are packed before each is copied out, made on first use. Shared: only the
   * holder of the new-users lock packs, and a transaction packs once.
   */
  private buffers: { ids: Uint8Array; lengths: Uint8Array } | undefined;
  /** Whether settle() is running, its timer while it waits to, and how many enterChunk calls are under way. */
  private settling = false;
  private settleTimer: NodeJS.Timeout | undefined;
  private entering = 0;

  constructor(
    private readonly store: UserStore,
    readonly directory: UserDirectory,
  ) {}

  /**
   * Reads every chunk ending past what memory holds (all of them at start-up) into the directory.
   * Chunks are contiguous and entered in order, so memory always holds a prefix of them; entering
   * one again is harmless (uids already there are skipped), which covers chunks a commit of this
   * process wrote but has not entered yet. Each id has one uid in the store (the lock sees to
   * it), so entering takes no comparisons (addStoredUtf8).
   */
  async catchUp(q?: Queryable): Promise<void> {
    let page = this.store.chunksEndingAfter(this.directory.uidBound, q);
    for (;;) {
      const chunks = await page;
      const last = chunks[chunks.length - 1];
      if (last === undefined) return;
      // The next page is read while this one is entered: the store works while this thread does.
      page = this.store.chunksEndingAfter(last.firstUid + last.count, q);
      // Awaited below; should entering fail first, its failure must not go unhandled.
      page.catch(() => undefined);
      for (const chunk of chunks) await this.enterChunk(chunk);
    }
  }

  /** Start-up: enters every stored user, in one streamed read where the store can (Postgres). */
  async load(): Promise<void> {
    const copied = await this.store.copyChunks(this.directory.uidBound, (chunk) => this.enterChunk(chunk));
    if (!copied) await this.catchUp();
  }

  /** The uids of pending ids that are known now (another change may have created them); NOT_FOUND for the rest. */
  async resolve(pending: NewIds): Promise<Uint32Array> {
    const uids = new Uint32Array(pending.size).fill(NOT_FOUND);
    if (this.directory.uidBound === pending.since) return uids;
    const scratch = new Uint8Array(MAX_ENTRY);
    for (let i = 0; i < pending.size; i++) {
      const end = pending.copyId(i, scratch, 0);
      uids[i] = this.directory.lookupUtf8(scratch, 0, end) ?? NOT_FOUND;
      if ((i & (IDS_PER_CHECK - 1)) === IDS_PER_CHECK - 1 && sliceDue()) await nextSlice();
    }
    return uids;
  }

  /**
   * Inside a change's transaction: gives every pending id a uid — the one it has by now, or the
   * next free one — and stores the new users as chunks. All of a transaction's pending sets go in
   * one call, so an id several of them name gets one uid. The lock is held until the transaction
   * ends: no other process can assign the same uids or give an id a second one meanwhile.
   */
  async register(tx: Queryable, pendings: readonly NewIds[]): Promise<Registered> {
    if (pendings.every((pending) => pending.size === 0)) return { uids: pendings.map(() => new Uint32Array(0)), created: [] };
    await this.store.lockNewUsers(tx);
    await this.catchUp(tx);
    const start = await this.store.end(tx);
    if (start !== this.directory.uidBound) {
      throw new Error(`user directory: memory ends at uid ${this.directory.uidBound} but the store's chunks end at ${start}`);
    }
    const [only] = pendings;
    const merged = pendings.length === 1 && only !== undefined ? undefined : await merge(pendings);
    const all = merged ?? (only as NewIds);
    const allUids = await this.resolve(all);
    const created = await this.assign(all, allUids, start);
    for (const chunk of created) await this.store.insertChunk(tx, chunk);
    if (merged === undefined) return { uids: [allUids], created };
    return { uids: await Promise.all(pendings.map((pending) => uidsIn(merged, allUids, pending))), created };
  }

  /**
   * Enters users a committed transaction created, sliced so the event loop keeps answering. A
   * catch-up (another transaction's, under the lock) may have entered some already: those uids
   * are skipped. Entered from the chunks as stored, 16 at a time like start-up: at 10M users that
   * took ~450 ns a user where copying each from the pending set with its hash took ~700 ns.
   */
  async enter(created: CreatedUsers): Promise<void> {
    for (const chunk of created) await this.enterChunk(chunk, chunk.hashes);
  }

  /** Gives each pending id still NOT_FOUND in `uids` the next uid from `start`, packing them into chunks to store. */
  private async assign(pending: NewIds, uids: Uint32Array, start: number): Promise<CreatedChunk[]> {
    const chunks: CreatedChunk[] = [];
    const hashes = new Uint32Array(Math.min(pending.size, CHUNK_IDS));
    this.buffers ??= { ids: new Uint8Array(CHUNK_BYTES + MAX_ENTRY), lengths: new Uint8Array(2 * CHUNK_IDS) };
    const { ids: buffer, lengths } = this.buffers;
    let fill = 0;
    let first = start;
    let next = start;
    const flush = () => {
      const count = next - first;
      if (count > 0) {
        chunks.push({
          firstUid: first,
          count,
          lengths: lengths.slice(0, 2 * count),
          ids: buffer.slice(0, fill),
          hashes: hashes.slice(0, count),
        });
      }
      first = next;
      fill = 0;
    };
    for (let i = 0; i < pending.size; i++) {
      if (uids[i] !== NOT_FOUND) continue;
      const end = pending.copyId(i, buffer, fill);
      const k = 2 * (next - first);
      lengths[k] = (end - fill) & 0xff;
      lengths[k + 1] = (end - fill) >>> 8;
      hashes[next - first] = pending.hashOf(i);
      fill = end;
      uids[i] = next++;
      if (next - first === CHUNK_IDS || fill >= CHUNK_BYTES) flush();
      if ((i & (IDS_PER_CHECK - 1)) === IDS_PER_CHECK - 1 && sliceDue()) await nextSlice();
    }
    flush();
    return chunks;
  }

  /** Enters one chunk's users (a zero length is a uid never assigned); `hashes`: their hashUtf8, when known. */
  private async enterChunk(chunk: UserChunk, hashes?: Uint32Array): Promise<void> {
    this.entering++;
    try {
      await this.enterUsers(chunk, hashes);
    } finally {
      this.entering--;
    }
    if (this.directory.rehashing) this.settleSoon();
  }

  /** enterChunk's work, in slices. */
  private async enterUsers({ firstUid, count, lengths, ids }: UserChunk, hashes?: Uint32Array): Promise<void> {
    const ends = new Uint32Array(count);
    let at = 0;
    for (let i = 0; i < count; i++) {
      at += (lengths[2 * i] ?? 0) | ((lengths[2 * i + 1] ?? 0) << 8);
      ends[i] = at;
    }
    if (at !== ids.length)
      throw new Error(`user directory: chunk at uid ${firstUid} holds ${ids.length} bytes of ids, its lengths say ${at}`);
    for (let from = 0; from < count; from += IDS_PER_CHECK) {
      this.directory.addStoredMany(firstUid, ids, ends, from, Math.min(count, from + IDS_PER_CHECK), hashes);
      if (sliceDue()) await nextSlice();
    }
  }

  /**
   * Finishes a doubling of the directory's table in the background once users stop arriving. Left
   * to adds alone, a directory that stopped growing just past a doubling kept most ids in the old
   * table: bench batch-check at 3M users (seeding ends 64k adds past one) spent ~1 µs per id in
   * lookups, against ~0.2 µs in-process on a settled table. It waits for a quiet spell and gives
   * way to any write entering users: a write's answer must leave within its deadline's margin
   * after COMMIT (adapter.ts), and sharing the loop with settle() once pushed one past it.
   */
  private settleSoon(): void {
    clearTimeout(this.settleTimer);
    this.settleTimer = setTimeout(() => void this.settle(), SETTLE_QUIET_MS);
    this.settleTimer.unref();
  }

  private async settle(): Promise<void> {
    if (this.settling) return;
    this.settling = true;
    try {
      while (this.entering === 0 && this.directory.settle(SETTLE_SLOTS)) await nextSlice();
    } finally {
      this.settling = false;
    }
  }
}

/** The distinct ids of several pending sets, as one. */
async function merge(pendings: readonly NewIds[]): Promise<PendingUsers> {
  const merged = new PendingUsers(Math.min(...pendings.map((pending) => pending.since)));
  const scratch = new Uint8Array(MAX_ENTRY);
  for (const pending of pendings) {
    for (let i = 0; i < pending.size; i++) {
      merged.addUtf8(scratch, 0, pending.copyId(i, scratch, 0), pending.hashOf(i));
      if ((i & (IDS_PER_CHECK - 1)) === IDS_PER_CHECK - 1 && sliceDue()) await nextSlice();
    }
  }
  return merged;
}

/** The uids `mergedUids` gives `pending`'s ids, by way of their position in `merged`. */
async function uidsIn(merged: PendingUsers, mergedUids: Uint32Array, pending: NewIds): Promise<Uint32Array> {
  const uids = new Uint32Array(pending.size);
  const scratch = new Uint8Array(MAX_ENTRY);
  for (let i = 0; i < pending.size; i++) {
    const at = merged.ids.lookupUtf8(scratch, 0, pending.copyId(i, scratch, 0));
    uids[i] = at === undefined ? NOT_FOUND : (mergedUids[at] ?? NOT_FOUND);
    if ((i & (IDS_PER_CHECK - 1)) === IDS_PER_CHECK - 1 && sliceDue()) await nextSlice();
  }
  return uids;
}
