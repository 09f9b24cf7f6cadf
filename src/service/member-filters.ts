/**
 * Member filters (index/member-filter.ts) for the small segments that batch checks ask about, kept
 * in step with their bitmaps. A batch check of a segment of 1% of the users spent nearly all its
 * time looking up ids that turn out not to be members; with a filter, most of them cost a hash.
 *
 * A filter is made on the first batch check of a segment, in the background: hashing each member
 * reads its id from the directory (a cache miss per member, ~0.1–0.2 µs), too long to do inline
 * for a large segment, so the build runs in time slices and calls go the full way meanwhile. Once
 * made, a filter follows its segment's bitmap: a later call that finds a bitmap with a few new
 * members hashes them in place (members that left need nothing); a bigger change starts a new
 * build. A filter is only used with the exact bitmap it has every member of, so a stale one is
 * never consulted.
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
/** New members a call hashes into a filter in place (under 1 ms at ~0.1–0.2 µs each); more start a new build. */
const CATCH_UP_MAX = 4096;
/** Members hashed between looks at the clock during a build. */
const PAGE = 1024;
/** Bytes all filters may hold together (16–32 M members' worth); the least recently used go first. */
const MAX_BYTES = 64 << 20;

/** How a build ended. */
type Outcome = "done" | "stopped" | "refused";

interface Entry {
  /** A filter with every member of `covers`; null while the segment has none ready. */
  filter: MemberFilter | null;
  covers: RoaringBitmap32 | null;
  /** Bytes held for this segment: its filter, or the one being built. */
  bytes: number;
  building: boolean;
  /**
   * A bitmap holding a uid the directory does not know (yet): its hash is unknown, so no filter
   * can have it. Not tried again; the segment's next bitmap is.
   */
  refused: RoaringBitmap32 | null;
}

/** Segment id → the filter of its current bitmap, made and caught up on demand. */
export class MemberFilters {
  /** In use order, least recent first. */
  private readonly entries = new Map<string, Entry>();
  private readonly builds = new Set<Promise<void>>();
  private bytes = 0;
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
    if (this.closed) return undefined;
    if (bitmap.size > this.directory.size * MAX_SHARE) {
      this.drop(segmentId);
      return undefined;
    }
    const entry = this.entries.get(segmentId);
    if (entry === undefined) {
      this.build(segmentId, bitmap);
      return undefined;
    }
    this.entries.delete(segmentId);
    this.entries.set(segmentId, entry);
    if (entry.covers === bitmap) return entry.filter ?? undefined;
    if (entry.building || entry.refused === bitmap) return undefined;
    if (this.catchUp(entry, bitmap)) return entry.filter ?? undefined;
    this.build(segmentId, bitmap);
    return undefined;
  }

  /** Bytes of the filters ready for use (builds under way hold theirs too, briefly). */
  get byteSize(): number {
    let bytes = 0;
    for (const entry of this.entries.values()) bytes += entry.filter?.byteSize ?? 0;
    return bytes;
  }

  /** Settles when every build under way has finished (for shutdown and tests). */
  async idle(): Promise<void> {
    while (this.builds.size > 0) await Promise.all(this.builds);
  }

  /** Stops builds at their next slice and makes no more filters. */
  close(): void {
    this.closed = true;
    for (const segmentId of [...this.entries.keys()]) this.drop(segmentId);
  }

  /** Adds the members `bitmap` has and the filter lacks, if they are few; false when they are not. */
  private catchUp(entry: Entry, bitmap: RoaringBitmap32): boolean {
    const { filter, covers } = entry;
    if (filter === null || covers === null) return false;
    const added = RoaringBitmap32.andNot(bitmap, covers);
    if (added.size > CATCH_UP_MAX || !filter.hasRoomFor(added.size)) return false;
    const uids = added.toUint32Array();
    if (this.directory.hashesOf(uids, uids.length, this.hashes) > 0) return false;
    filter.addAll(this.hashes, uids.length);
    entry.covers = bitmap;
    return true;
  }

  /** Starts making a filter of `bitmap` for `segmentId`, in place of any it had. */
  private build(segmentId: string, bitmap: RoaringBitmap32): void {
    this.drop(segmentId);
    const bytes = MemberFilter.bytesFor(bitmap.size);
    const entry: Entry = { filter: null, covers: null, bytes: 0, building: true, refused: null };
    this.entries.set(segmentId, entry);
    if (!this.makeRoom(bytes, segmentId)) {
      // Larger than all filters may be together: not tried again for this bitmap.
      this.settle(segmentId, entry, "refused", bitmap, null);
      return;
    }
    entry.bytes = bytes;
    this.bytes += bytes;
    const filter = new MemberFilter(bitmap.size);
    const run = this.fill(segmentId, entry, filter, bitmap).then(
      (outcome) => this.settle(segmentId, entry, outcome, bitmap, filter),
      // Hashing reads only memory and cannot fail on a bitmap of assigned uids; should it, the
      // segment is served without a filter, as it would be without this module.
      () => this.settle(segmentId, entry, "refused", bitmap, null),
    );
    this.builds.add(run);
    void run.finally(() => this.builds.delete(run));
  }

  /** Ends a build: its filter in use, or the bitmap refused (its bytes given back), unless the entry was dropped meanwhile. */
  private settle(segmentId: string, entry: Entry, outcome: Outcome, bitmap: RoaringBitmap32, filter: MemberFilter | null): void {
    entry.building = false;
    if (this.entries.get(segmentId) !== entry) return;
    if (outcome === "done" && filter !== null) {
      entry.filter = filter;
      entry.covers = bitmap;
    } else if (outcome === "refused") {
      entry.refused = bitmap;
      this.bytes -= entry.bytes;
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

  /** Drops the least recently used filters but `keep`'s until `bytes` more fit; false if they never would. */
  private makeRoom(bytes: number, keep: string): boolean {
    if (bytes > this.maxBytes) return false;
    for (const segmentId of this.entries.keys()) {
      if (this.bytes + bytes <= this.maxBytes) break;
      if (segmentId !== keep) this.drop(segmentId);
    }
    return true;
  }

  private drop(segmentId: string): void {
    const entry = this.entries.get(segmentId);
    if (entry === undefined) return;
    this.entries.delete(segmentId);
    this.bytes -= entry.bytes;
  }
}
