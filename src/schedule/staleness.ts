/**
 * Freshness of scheduled segments, as pure functions of the segment and the time: what the
 * Segment message reports as `stale` and `next_evaluation_time` (see segment.proto).
 */
import type { SegmentStatus, SegmentType } from "../model.js";
import { nextFire, previousFire } from "./cron-time.js";
import type { ScheduledSegment } from "./schedule-policy.js";

/** What staleness needs of a segment. */
export interface FreshnessSegment extends ScheduledSegment {
  type: SegmentType;
  status: SegmentStatus;
  /**
   * When the definition or status last changed (activation, resume, a new schedule). A run that
   * came due before it was not promised under the current schedule, so it cannot make the segment
   * stale.
   */
  updatedAt: Date;
}

function runsOnSchedule(segment: ScheduledSegment): segment is ScheduledSegment & { schedule: { cron: string; timeZone: string } } {
  return segment.type === "DYNAMIC" && segment.status === "ACTIVE" && segment.schedule !== null && segment.schedule.cron.trim() !== "";
}

/**
 * True for an ACTIVE DYNAMIC segment with a cron whose most recent due run — the last fire at or
 * before `now − graceMs`, and after `updatedAt` — has not been followed by a successful evaluation
 * (`lastSuccessAt`: start of the latest successful run, manual or scheduled).
 */
export function isStale(segment: FreshnessSegment, lastSuccessAt: Date | null, now: Date, graceMs: number): boolean {
  if (!runsOnSchedule(segment)) return false;
  const due = previousFire(segment.schedule.cron, segment.schedule.timeZone, new Date(now.getTime() - graceMs));
  if (due === null || due <= segment.updatedAt) return false;
  return lastSuccessAt === null || lastSuccessAt < due;
}

/**
 * When the next scheduled evaluation is due: the first fire after `now` for an ACTIVE DYNAMIC
 * segment with a cron, else null. Pass the stored next_run_at as `pending` when known: it is the
 * truth when a run is overdue (catch-up) or retrying after failures (backoff).
 */
export function nextEvaluationTime(segment: ScheduledSegment, now: Date, pending: Date | null = null): Date | null {
  if (!runsOnSchedule(segment)) return null;
  return pending ?? nextFire(segment.schedule.cron, segment.schedule.timeZone, now);
}
