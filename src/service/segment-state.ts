/**
 * Everything the service holds in memory: segment definitions, their bitmaps and the user
 * directory (and the key page tokens are signed with). Rebuilt from the store at start;
 * afterwards changed only after a commit.
 */

import { FailedPreconditionError, NotFoundError } from "../errors.js";
import type { RoaringBitmap32 } from "../index/roaring.js";
import { SegmentBitmaps } from "../index/segment-bitmaps.js";
import { UserDirectory } from "../index/user-directory.js";
import type { Segment } from "../model.js";
import { desiredKey } from "../schedule/schedule-policy.js";
import { isStale, nextEvaluationTime } from "../schedule/staleness.js";
import { loadPageTokenSecret } from "../store/page-token-secret.js";
import type { SegmentStore } from "../store/segment-store.js";
import type { UserStore } from "../store/user-store.js";
import { MemberFilters } from "./member-filters.js";
import { UserRegistry } from "./user-registry.js";
import { checkSegmentId } from "./validation.js";
import { replayTo } from "./versions.js";

/** A scheduled run as stored: when, and under which schedule key (see schedule-policy.ts). */
export interface PlannedRun {
  key: string | null;
  nextRunAt: Date | null;
}

/** What a segment's answers say about its freshness. */
export interface Freshness {
  stale: boolean;
  nextEvaluationAt: Date | null;
}

/** A Map that counts its changes, so views derived from it know when to rebuild. */
class CountedMap<K, V> extends Map<K, V> {
  generation = 0;

  override set(key: K, value: V): this {
    this.generation++;
    return super.set(key, value);
  }

  override delete(key: K): boolean {
    this.generation++;
    return super.delete(key);
  }
}

/** A segment the hot path serves (ACTIVE or PAUSED), with its current bitmap. */
export interface ServedSegment {
  segment: Segment;
  bitmap: RoaringBitmap32;
  everyone: boolean;
}

/** A committed membership version, as followers of the state (the change feed) receive it. */
export interface MembershipChange {
  segmentId: string;
  version: number;
  at: Date;
  added: RoaringBitmap32;
  removed: RoaringBitmap32;
  /** The delta as written to the change log (portable Roaring), so followers need not encode it again. */
  addedBytes: Uint8Array;
  removedBytes: Uint8Array;
  memberCount: number;
}

/** Told of every change to memory, after its COMMIT and in commit order. Must not throw. */
export interface StateListener {
  /** A membership version this process committed. */
  membershipChanged(change: MembershipChange): void;
  /** A segment re-read from the store (catch-up): versions up to its version may have been committed by another process. */
  reloaded(segment: Segment): void;
  /** A segment's status changed (`segment` holds the new one) or it was deleted (`undefined`). */
  statusChanged(id: string, segment: Segment | undefined): void;
}

/** The in-memory view of every segment. */
export class SegmentState {
  readonly segments = new CountedMap<string, Segment>();
  private served: { list: ServedSegment[]; segments: number; bitmaps: number } | undefined;
  readonly bitmaps = new SegmentBitmaps();
  readonly directory: UserDirectory;
  /** Filters of small segments' members, for batch checks (member-filters.ts). */
  readonly filters: MemberFilters;
  /** Per segment: changes written since its newest snapshot (count, bytes), for compaction. */
  readonly unsnapshotted = new Map<string, { count: number; bytes: number }>();
  /**
   * Per armed segment: the next_run_at the scheduler last saw in the database and the schedule it
   * was computed for — the truth for next_evaluation_time during catch-up or backoff.
   */
  readonly plannedRuns = new Map<string, PlannedRun>();
  /** Followers of committed changes (the change feed). */
  readonly listeners = new Set<StateListener>();

  /** `pageTokenSecret` is the database's key: tokens verify on every replica and after a restart. */
  /** `users`: how many users to make room for (the directory's size at start-up). */
  constructor(
    readonly pageTokenSecret: Uint8Array,
    users = 0,
  ) {
    this.directory = new UserDirectory(users > 0 ? { initialCapacity: users } : {});
    this.filters = new MemberFilters(this.directory);
  }

  /** Publishes a committed membership change: the new bitmap, the segment's new counters, and the delta to listeners. */
  publishMembership(
    segment: Segment,
    members: RoaringBitmap32,
    delta: Pick<MembershipChange, "added" | "removed" | "addedBytes" | "removedBytes">,
  ): void {
    this.bitmaps.set(segment.id, members);
    this.segments.set(segment.id, segment);
    const changeBytes = delta.addedBytes.byteLength + delta.removedBytes.byteLength;
    const log = this.unsnapshotted.get(segment.id) ?? { count: 0, bytes: 0 };
    this.unsnapshotted.set(segment.id, { count: log.count + 1, bytes: log.bytes + changeBytes });
    // A published version always has its commit time; the fallback only satisfies the type.
    const at = segment.versionAt ?? new Date(0);
    const change = { ...delta, segmentId: segment.id, version: segment.version, at, memberCount: members.size };
    for (const listener of this.listeners) listener.membershipChanged(change);
  }

  /** Publishes a committed definition or status change; listeners hear of a new status. */
  publishSegment(segment: Segment): void {
    const before = this.segments.get(segment.id);
    this.segments.set(segment.id, segment);
    if (before?.status !== segment.status) for (const listener of this.listeners) listener.statusChanged(segment.id, segment);
  }

  /** Forgets a deleted segment. */
  forgetSegment(id: string): void {
    this.segments.delete(id);
    this.bitmaps.delete(id);
    this.unsnapshotted.delete(id);
    for (const listener of this.listeners) listener.statusChanged(id, undefined);
  }

  /**
   * Every ACTIVE or PAUSED segment with its bitmap, rebuilt only after a segment or a bitmap
   * changed: scans over all segments (ListUserSegments) then cost one `has()` per segment.
   */
  servedSegments(): readonly ServedSegment[] {
    const { generation: segments } = this.segments;
    const { generation: bitmaps } = this.bitmaps;
    if (this.served?.segments === segments && this.served.bitmaps === bitmaps) return this.served.list;
    const list: ServedSegment[] = [];
    for (const segment of this.segments.values()) {
      if (segment.status !== "ACTIVE" && segment.status !== "PAUSED") continue;
      list.push({ segment, bitmap: this.bitmaps.get(segment.id), everyone: segment.type === "EVERYONE" });
    }
    this.served = { list, segments, bitmaps };
    return list;
  }

  /** How fresh `segment` is at `now`: the `stale` flag and when its next scheduled evaluation is due. */
  freshness(segment: Segment, now: Date): Freshness {
    const planned = this.plannedRuns.get(segment.id);
    const pending = planned !== undefined && planned.key === desiredKey(segment) ? planned.nextRunAt : null;
    return { stale: isStale(segment, now.getTime()), nextEvaluationAt: nextEvaluationTime(segment, now, pending) };
  }

  /**
   * The segment if the hot path may answer for it: ACTIVE or PAUSED (existing consumers keep
   * working); FailedPreconditionError for DRAFT and ARCHIVED, as for an unknown id `require`.
   */
  servable(id: string, field: string): Segment {
    const segment = this.require(id, field);
    if (segment.status === "ACTIVE" || segment.status === "PAUSED") return segment;
    const fix = segment.status === "DRAFT" ? "activate it first" : "restore it first";
    throw new FailedPreconditionError("status", `segment ${id} is ${segment.status} and cannot be used for membership checks; ${fix}`);
  }

  /** The segment with `id`; InvalidArgumentError for a malformed id, NotFoundError for an unknown one. */
  require(id: string, field = "segment_id"): Segment {
    const segment = this.segments.get(id);
    if (segment !== undefined) return segment;
    checkSegmentId(id, field);
    throw new NotFoundError("segment", id);
  }
}

/** Start-up progress: one call per phase finished, and every few seconds within the segments. */
export type LoadProgress = (phase: "directory" | "segments", done: number, total: number | undefined, ms: number) => void;

/** Segments read at once: their queries overlap on a pool (PGlite has one connection, and queues them). */
const LOAD_CONCURRENCY = 4;
const PROGRESS_EVERY_MS = 2_000;

/**
 * Rebuilds the in-memory state: the directory, and each segment from its snapshot plus newer
 * changes. The two are independent (bitmaps hold uids), so they load at once: entering users is
 * this thread's work, reading and decoding bitmaps mostly the store's and roaring's.
 */
export async function loadState(store: SegmentStore, users: UserStore, progress: LoadProgress = () => undefined): Promise<SegmentState> {
  const started = performance.now();
  // Sized up front: growing by doubling re-places every user at each step.
  const state = new SegmentState(await loadPageTokenSecret(store.db), await users.count());
  const directory = new UserRegistry(users, state.directory).load().then(() => {
    progress("directory", state.directory.size, undefined, performance.now() - started);
  });
  // Should the segments fail first, the directory's failure must not go unhandled.
  directory.catch(() => undefined);
  await loadSegments(store, state, (done, total) => progress("segments", done, total, performance.now() - started));
  await directory;
  return state;
}

/** Loads every segment's bitmap into `state`, a few at a time, reporting every few seconds and at the end. */
async function loadSegments(store: SegmentStore, state: SegmentState, progress: (done: number, total: number) => void): Promise<void> {
  const segments = await store.loadSegments();
  // In the store's order, whatever order their bitmaps arrive in.
  for (const segment of segments) state.segments.set(segment.id, segment);
  let done = 0;
  let reported = performance.now();
  const queue = segments.values();
  const loadNext = async () => {
    for (const segment of queue) {
      state.bitmaps.set(segment.id, await loadMembership(store, state, segment));
      done++;
      if (performance.now() - reported >= PROGRESS_EVERY_MS && done < segments.length) {
        reported = performance.now();
        progress(done, segments.length);
      }
    }
  };
  await Promise.all(Array.from({ length: LOAD_CONCURRENCY }, loadNext));
  progress(done, segments.length);
}

async function loadMembership(store: SegmentStore, state: SegmentState, segment: Segment): Promise<RoaringBitmap32> {
  const log = { count: 0, bytes: 0 };
  const { members, version } = await replayTo(store, segment.id, Number.MAX_SAFE_INTEGER, undefined, (bytes) => {
    log.count++;
    log.bytes += bytes;
  });
  // The log and the counters are written in one transaction; disagreement means corruption.
  if (version !== segment.version || members.size !== segment.memberCount) {
    throw new Error(
      `segment ${segment.id}: rebuilt version ${version} with ${members.size} members, but the row says version ${segment.version} with ${segment.memberCount}`,
    );
  }
  state.unsnapshotted.set(segment.id, log);
  return members;
}

/**
 * Re-reads one segment from the store after a write found its version moved (a commit this
 * process did not make, such as one a killed predecessor sent just before dying), so memory
 * catches up instead of refusing every later change.
 */
export async function catchUp(store: SegmentStore, state: SegmentState, users: UserRegistry, id: string): Promise<void> {
  const segment = await store.loadSegment(id);
  if (segment === undefined) return;
  const members = await loadMembership(store, state, segment);
  // Users the other writer created are in chunks committed before its change.
  await users.catchUp();
  state.bitmaps.set(id, members);
  state.segments.set(id, segment);
  for (const listener of state.listeners) listener.reloaded(segment);
}
