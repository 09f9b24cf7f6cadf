/**
 * The hot path: membership answers straight from memory. No locks, no I/O; a reader sees the
 * bitmap published before or after a change, never a mix.
 */
import { FailedPreconditionError, InvalidArgumentError } from "../errors.js";
import type { Segment } from "../model.js";
import { isStale } from "../schedule/staleness.js";
import type { SegmentState } from "./segment-state.js";
import { checkUserId, checkUserIds } from "./validation.js";

export const MAX_SEGMENTS_PER_CHECK = 100;

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
  members: boolean[];
  version: number;
  versionAt: Date | null;
  stale: boolean;
}

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
    if (segmentIds.length === 0) throw new InvalidArgumentError("segment_ids", "must name at least one segment");
    if (segmentIds.length > MAX_SEGMENTS_PER_CHECK) {
      throw new InvalidArgumentError(
        "segment_ids",
        `${segmentIds.length} segments is over the limit of ${MAX_SEGMENTS_PER_CHECK} per call`,
      );
    }
    const uid = this.state.directory.lookup(userId);
    const now = this.now();
    return segmentIds.map((segmentId, i) => {
      const segment = this.servable(segmentId, `segment_ids[${i}]`);
      const member = segment.type === "EVERYONE" || (uid !== undefined && this.state.bitmaps.get(segmentId).has(uid));
      return { segmentId, member, version: segment.version, versionAt: segment.versionAt, stale: isStale(segment, now) };
    });
  }

  /** Is each of `userIds` in `segmentId`? Answers in request order. */
  batchCheckMembership(segmentId: string, userIds: readonly string[]): BatchAnswer {
    checkUserIds(userIds, this.maxIdsPerCall);
    const segment = this.servable(segmentId, "segment_id");
    // Take the bitmap once: every answer comes from the same version even if a change lands.
    const bitmap = this.state.bitmaps.get(segmentId);
    const { directory } = this.state;
    const everyone = segment.type === "EVERYONE";
    const members = userIds.map((userId) => {
      if (everyone) return true;
      const uid = directory.lookup(userId);
      return uid !== undefined && bitmap.has(uid);
    });
    return { members, version: segment.version, versionAt: segment.versionAt, stale: isStale(segment, this.now()) };
  }

  /** The segment if the hot path may answer for it: ACTIVE or PAUSED. */
  private servable(segmentId: string, field: string): Segment {
    const segment = this.state.require(segmentId, field);
    if (segment.status === "ACTIVE" || segment.status === "PAUSED") return segment;
    const fix = segment.status === "DRAFT" ? "activate it first" : "restore it first";
    throw new FailedPreconditionError(
      "status",
      `segment ${segmentId} is ${segment.status} and cannot be used for membership checks; ${fix}`,
    );
  }
}
