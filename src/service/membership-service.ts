/**
 * The hot path: membership answers straight from memory. No locks, no I/O; a reader sees the
 * bitmap published before or after a change, never a mix.
 */
import { viewOf } from "../index/bitmap-view.js";
import { NOT_FOUND } from "../index/user-directory.js";
import type { SegmentStatus } from "../model.js";
import { isStale } from "../schedule/staleness.js";
import type { UserIdChunk } from "../store/user-id-chunk.js";
import type { SegmentState } from "./segment-state.js";
import { checkSegmentId, checkSegmentList, checkUserId, checkUserIdBytes, checkUserIds } from "./validation.js";

/**
 * Batches of at least this many ids test membership through a BitmapView (bitmap-view.ts), and
 * through a member filter first where the segment has one.
 */
const VIEW_MIN_IDS = 64;

/** One segment's answer, with the membership version it was computed from. */
export interface MembershipAnswer {
  segmentId: string;
  member: boolean;
  version: number;
  versionAt: Date | null;
  /** The segment is DYNAMIC and its scheduled evaluation is overdue (see staleness.ts). */
  stale: boolean;
}

/** One segment's answers for many users, from a single membership version. */
export interface BatchAnswer {
  /** One byte per asked id, in request order: 1 for a member, else 0 (the response's packed bools as they are). */
  members: Uint8Array;
  version: number;
  versionAt: Date | null;
  stale: boolean;
}

/** Why one segment may not be newly targeted; `status` is null for an unknown id. */
export interface TargetingProblem {
  segmentId: string;
  status: SegmentStatus | null;
  reason: string;
}

/** The seed's lifecycle: only ACTIVE segments may be selected by a new campaign or rule. */
const NOT_TARGETABLE: Record<Exclude<SegmentStatus, "ACTIVE">, string> = {
  DRAFT: "the segment is DRAFT: not yet available for targeting; activate it first",
  PAUSED: "the segment is PAUSED: campaigns and rules that already use it keep working, but it cannot be newly selected; resume it first",
  ARCHIVED: "the segment is ARCHIVED and cannot be selected; restore it (it returns as PAUSED) and resume it first",
};

/** Membership questions answered from the in-memory bitmaps. */
export class MembershipService {
  constructor(
    private readonly state: SegmentState,
    private readonly maxIdsPerCall: number,
    /** Milliseconds since the epoch; the stale flag is judged against it. */
    private readonly now: () => number = Date.now,
  ) {}

  /** Is `userId` in each of `segmentIds`? Answers in request order. */
  checkMembership(userId: string, segmentIds: readonly string[]): MembershipAnswer[] {
    checkUserId(userId);
    checkSegmentList(segmentIds, "segment_ids", 1);
    const uid = this.state.directory.lookup(userId);
    const now = this.now();
    return segmentIds.map((segmentId, i) => {
      const segment = this.state.servable(segmentId, `segment_ids[${i}]`);
      const member = segment.type === "EVERYONE" || (uid !== undefined && this.state.bitmaps.get(segmentId).has(uid));
      return { segmentId, member, version: segment.version, versionAt: segment.versionAt, stale: isStale(segment, now) };
    });
  }

  /** Is each of `userIds` in `segmentId`? Answers in request order. */
  batchCheckMembership(segmentId: string, userIds: readonly string[]): BatchAnswer {
    checkUserIds(userIds, this.maxIdsPerCall);
    const segment = this.state.servable(segmentId, "segment_id");
    // Take the bitmap once: every answer comes from the same version even if a change lands.
    const bitmap = this.state.bitmaps.get(segmentId);
    const { directory } = this.state;
    const everyone = segment.type === "EVERYONE";
    const members = new Uint8Array(userIds.length);
    userIds.forEach((userId, i) => {
      const uid = everyone ? undefined : directory.lookup(userId);
      members[i] = everyone || (uid !== undefined && bitmap.has(uid)) ? 1 : 0;
    });
    return { members, version: segment.version, versionAt: segment.versionAt, stale: isStale(segment, this.now()) };
  }

  /**
   * batchCheckMembership for ids given as UTF-8 byte ranges (straight from the request): the same
   * answers and refusals, with the uids resolved in groups by lookupManyUtf8 and no string per id.
   */
  batchCheckMembershipUtf8(segmentId: string, userIds: UserIdChunk): BatchAnswer {
    checkUserIdBytes(userIds, this.maxIdsPerCall);
    const segment = this.state.servable(segmentId, "segment_id");
    const bitmap = this.state.bitmaps.get(segmentId);
    const count = userIds.length;
    const members = new Uint8Array(count);
    if (segment.type === "EVERYONE") members.fill(1);
    else {
      const uids = new Uint32Array(count);
      const filter = count >= VIEW_MIN_IDS ? this.state.filters.for(segmentId, bitmap) : undefined;
      this.state.directory.lookupManyUtf8(userIds.bytes, userIds.ends, 0, count, uids, undefined, filter);
      // A view copies the bitmap once per published version; 64 (not measured) keeps a tiny batch from paying that.
      const view = count >= VIEW_MIN_IDS ? viewOf(bitmap) : undefined;
      for (let i = 0; i < count; i++) {
        const uid = uids[i] ?? NOT_FOUND;
        if (uid !== NOT_FOUND && (view === undefined ? bitmap.has(uid) : view.has(uid))) members[i] = 1;
      }
    }
    return { members, version: segment.version, versionAt: segment.versionAt, stale: isStale(segment, this.now()) };
  }

  /**
   * Every ACTIVE or PAUSED segment containing `userId`, EVERYONE included, ordered by segment id.
   * One `has()` per served segment over a cached list (SegmentState.servedSegments); an inverted
   * index would cost memory per membership instead. Figures: bench `list-user-segments`.
   */
  listUserSegments(userId: string): MembershipAnswer[] {
    checkUserId(userId);
    const uid = this.state.directory.lookup(userId);
    const now = this.now();
    const found: MembershipAnswer[] = [];
    for (const { segment, bitmap, everyone } of this.state.servedSegments()) {
      if (everyone || (uid !== undefined && bitmap.has(uid))) {
        found.push({
          segmentId: segment.id,
          member: true,
          version: segment.version,
          versionAt: segment.versionAt,
          stale: isStale(segment, now),
        });
      }
    }
    return found.sort((a, b) => (a.segmentId < b.segmentId ? -1 : a.segmentId > b.segmentId ? 1 : 0));
  }

  /** May a new campaign or rule select each of `segmentIds`? Only ACTIVE ones; the others are problems, not errors. */
  validateTargeting(segmentIds: readonly string[]): { valid: boolean; problems: TargetingProblem[] } {
    checkSegmentList(segmentIds, "segment_ids", 1);
    const problems: TargetingProblem[] = [];
    segmentIds.forEach((segmentId, i) => {
      checkSegmentId(segmentId, `segment_ids[${i}]`);
      const segment = this.state.segments.get(segmentId);
      if (segment === undefined) problems.push({ segmentId, status: null, reason: "no segment has this id" });
      else if (segment.status !== "ACTIVE") problems.push({ segmentId, status: segment.status, reason: NOT_TARGETABLE[segment.status] });
    });
    return { valid: problems.length === 0, problems };
  }
}
