/**
 * Member filters (index/member-filter.ts) for the small segments that batch checks ask about, kept
 * in step with their bitmaps. A batch check of a segment of 1% of the users spent nearly all its
 * time looking up ids that turn out not to be members; with a filter, most of them cost a hash.
 *
 * A filter is made on the first batch check of a segment, in the background: hashing a member
 * reads its id from the directory (cache misses: 175–356 ns a member at 3M users), too long to do
 * inline for a large segment, so the build runs in time slices and calls go the full way
 * meanwhile. Once made, a filter follows its segment's bitmap: a later call that finds a bitmap
 * with a few new members hashes them in place (members that left need nothing); a bigger change
 * starts a new build. A filter is only used with the exact bitmap it has every member of, so a
 * stale one is never consulted.
 */
import { nextSlice, sliceDue } from "../control/time-slice.js";
import { MemberFilter } from "../index/member-filter.js";
import { RoaringBitmap32 } from "../index/roaring.js";
import type { UserDirectory } from "../index/user-directory.js";

/**
 * A segment gets a filter while it holds at most this share of all users. Past it, most ids asked
 * about are members, the lookup is paid anyway, and the filter is memory for nothing.
 */
const MAX_SHARE = 1 / 4;
/**
 * New members a call hashes into a filter in place; more start a new build. Hashing 4,096 random
 * members of 3M users took 175–356 ns each (in-process, cold), so 2,048 keeps a call's catch-up
 * within the 1 ms slice that background work gets (time-slice.ts).
 */
const CATCH_UP_MAX = 2048;
/** Members hashed between looks at the clock during a build. */
const PAGE = 1024;
/** Bytes all filters may hold together (16–32 M members' worth); the least recently used go first. */
const MAX_BYTES = 64 << 20;

/** How a build ended. */
type Outcome = "done" | "stopped" | "refused";

/** Where a segment's filter stands. */
type State =
  | { readonly kind: "building" }
  /** Has every member of `covers`. */
  | { readonly kind: "ready"; readonly filter: MemberFilter; covers: RoaringBitmap32 }
  /**
   * A bitmap holding a uid the directory does not know (yet: its hash is unknown, so no filter
   * can have it), or one whose filter alone would pass the byte cap. Not tried again; the
   * segment's next bitmap is.
   */
  | { readonly kind: "refused"; readonly bitmap: RoaringBitmap32 };

interface Entry {
  state: State;
  /** Bytes held for this segment: its filter, or the one being built. */
  bytes: number;
}

/** Segment id → the filter of its current bitmap, made and caught up on demand. */
export class MemberFilters {
  /** In use order, least recent first. */
  private readonly entries = new Map<string, Entry>();
  private readonly builds = new Set<Promise<void>>();
  private closed = false;
  private readonly page = new Uint32Array(PAGE);
  private readonly hashes = new Uint32Array(Math.max(PAGE, CATCH_UP_MAX));

  constructor(
    private readonly directory: UserDirectory,
    private readonly maxBytes = MAX_BYTES,
  ) {}

  /**
   * A filter holding every member of `bitmap`, `segmentId`'s current membership; undefined when
   * the segment is too large for one to pay or its filter is not ready (then it is being built).
   */
  for(segmentId: string, bitmap: RoaringBitmap32): MemberFilter | undefined {
    const entry = this.entries.get(segmentId);
    // The usual call: this very bitmap's filter. It was small enough when made, and the directory
    // only grows, so it still is; no size is asked of the bitmap.
    if (entry?.state.kind === "ready" && entry.state.covers === bitmap) {
      this.touch(segmentId, entry);
      return entry.state.filter;
    }
    if (this.closed) return undefined;
    if (bitmap.size > this.directory.size * MAX_SHARE) {
      this.entries.delete(segmentId);
      return undefined;
    }
    if (entry === undefined) {
      this.build(segmentId, bitmap);
      return undefined;
    }
    this.touch(segmentId, entry);
    const { state } = entry;
    if (state.kind === "building" || (state.kind === "refused" && state.bitmap === bitmap)) return undefined;
    if (state.kind === "ready" && this.catchUp(state, bitmap)) return state.filter;
    this.build(segmentId, bitmap);
    return undefined;
  }

  /** Bytes of the filters ready for use (builds under way hold theirs too, briefly). */
  get byteSize(): number {
    let bytes = 0;
    for (const { state } of this.entries.values()) if (state.kind === "ready") bytes += state.filter.byteSize;
    return bytes;
  }

  /** Settles when every build under way has finished (for tests). */
  async idle(): Promise<void> {
    while (this.builds.size > 0) await Promise.all(this.builds);
  }

  /** Stops builds at their next slice and makes no more filters. */
  close(): void {
    this.closed = true;
    this.entries.clear();
  }

  /** Marks `entry` the most recently used. */
  private touch(segmentId: string, entry: Entry): void {
    this.entries.delete(segmentId);
    this.entries.set(segmentId, entry);
  }

  /** Adds the members `bitmap` has and the filter lacks, if they are few; false when they are not. */
  private catchUp(state: Extract<State, { kind: "ready" }>, bitmap: RoaringBitmap32): boolean {
    const added = RoaringBitmap32.andNot(bitmap, state.covers);
    if (added.size > CATCH_UP_MAX || !state.filter.hasRoomFor(added.size)) return false;
    const uids = added.toUint32Array();
    if (this.directory.hashesOf(uids, uids.length, this.hashes) > 0) return false;
    state.filter.addAll(this.hashes, uids.length);
    state.covers = bitmap;
    return true;
  }

  /** Starts making a filter of `bitmap` for `segmentId`, in place of any it had. */
  private build(segmentId: string, bitmap: RoaringBitmap32): void {
    this.entries.delete(segmentId);
    const bytes = MemberFilter.bytesFor(bitmap.size);
    if (!this.makeRoom(bytes)) {
      this.entries.set(segmentId, { state: { kind: "refused", bitmap }, bytes: 0 });
      return;
    }
    const entry: Entry = { state: { kind: "building" }, bytes };
    this.entries.set(segmentId, entry);
    const filter = new MemberFilter(bitmap.size);
    const run = this.fill(segmentId, entry, filter, bitmap).then(
      (outcome) => this.settle(segmentId, entry, outcome, bitmap, filter),
      // Hashing reads only memory and cannot fail on a bitmap of assigned uids; should it, the
      // segment is served without a filter, as it would be without this module.
      () => this.settle(segmentId, entry, "refused", bitmap, filter),
    );
    this.builds.add(run);
    void run.finally(() => this.builds.delete(run));
  }

  /** Ends a build: its filter in use, or the bitmap refused (its bytes given back), unless the entry was dropped meanwhile. */
  private settle(segmentId: string, entry: Entry, outcome: Outcome, bitmap: RoaringBitmap32, filter: MemberFilter): void {
    if (this.entries.get(segmentId) !== entry) return;
    if (outcome === "done") entry.state = { kind: "ready", filter, covers: bitmap };
    else if (outcome === "refused") {
      entry.state = { kind: "refused", bitmap };
      entry.bytes = 0;
    }
  }

  /** Hashes every member of `bitmap` into `filter`, a page at a time, unless stopped or refused first. */
  private async fill(segmentId: string, entry: Entry, filter: MemberFilter, bitmap: RoaringBitmap32): Promise<Outcome> {
    const total = bitmap.size;
    // Not a page in the call that asked: it answers first. (nextSlice would rest for as long as the
    // stretch it thinks ran, and none did here.)
    await new Promise((resolve) => setImmediate(resolve));
    for (let offset = 0; offset < total; offset += PAGE) {
      // Closed, or the segment dropped or rebuilt meanwhile: nobody will use this one.
      if (this.closed || this.entries.get(segmentId) !== entry) return "stopped";
      const uids = bitmap.rangeUint32Array(this.page, offset, PAGE);
      if (this.directory.hashesOf(uids, uids.length, this.hashes) > 0) return "refused";
      filter.addAll(this.hashes, uids.length);
      if (sliceDue()) await nextSlice();
    }
    return this.closed ? "stopped" : "done";
  }

  /** Drops the least recently used filters until `bytes` more fit; false if they never would. */
  private makeRoom(bytes: number): boolean {
    if (bytes > this.maxBytes) return false;
    let used = 0;
    for (const entry of this.entries.values()) used += entry.bytes;
    for (const [segmentId, entry] of this.entries) {
      if (used + bytes <= this.maxBytes) break;
      this.entries.delete(segmentId);
      used -= entry.bytes;
    }
    return true;
  }
}
