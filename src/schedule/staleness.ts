/**
 * Freshness of scheduled segments, as pure functions of the segment and the time: what the
 * Segment message and every hot-path answer report as `stale`, and `next_evaluation_time` (see
 * segment.proto).
 *
 * Stale means a scheduled run is overdue by more than one interval: the first run promised after
 * the latest success (or after the schedule was set) has not succeeded by the fire after it.
 * With `0 *\/6 * * *`, a segment that last succeeded at 06:00 is fresh until 18:00 even if the
 * 12:00 run failed; at 18:00, with no success since 06:00, it is stale until a run succeeds.
 */
import type { SegmentStatus, SegmentType } from "../model.js";
import { nextFire } from "./cron-time.js";
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
  /** Start of the latest successful evaluation, manual or scheduled; null if none. */
  lastSuccessAt: Date | null;
}

function runsOnSchedule(segment: ScheduledSegment): segment is ScheduledSegment & { schedule: { cron: string; timeZone: string } } {
  return segment.type === "DYNAMIC" && segment.status === "ACTIVE" && segment.schedule !== null && segment.schedule.cron.trim() !== "";
}

/**
 * The instant from which `segment` is stale unless an evaluation succeeds first: the fire after
 * the first run due since max(updatedAt, lastSuccessAt). Null when it never goes stale (not an
 * ACTIVE DYNAMIC segment with a cron).
 */
export function staleFrom(segment: FreshnessSegment): Date | null {
  if (!runsOnSchedule(segment)) return null;
  const { cron, timeZone } = segment.schedule;
  const since = segment.lastSuccessAt !== null && segment.lastSuccessAt > segment.updatedAt ? segment.lastSuccessAt : segment.updatedAt;
  const due = nextFire(cron, timeZone, since);
  return due === null ? null : nextFire(cron, timeZone, due);
}

// Segments are replaced, never mutated, when they change, so the instant can be kept per object:
// the hot path pays a WeakMap lookup, not a cron walk.
const staleFromMs = new WeakMap<FreshnessSegment, number>();

/** True when `segment` is stale at `nowMs` (see staleFrom); memoized per segment object. */
export function isStale(segment: FreshnessSegment, nowMs: number): boolean {
  let from = staleFromMs.get(segment);
  if (from === undefined) {
    from = staleFrom(segment)?.getTime() ?? Number.POSITIVE_INFINITY;
    staleFromMs.set(segment, from);
  }
  return nowMs >= from;
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
