/**
 * What the scheduler decides, as pure functions of a segment's stored schedule state and the
 * time: whether a due run starts, is skipped or is dropped, and where next_run_at goes after a
 * run (the regular next fire, or a backoff after failures). src/store/schedule-store.ts applies
 * these decisions under a row lock; the scheduler supplies the clock.
 */
import type { Schedule, SegmentStatus, SegmentType } from "../model.js";
import type { DueDecision, RunSettlement, ScheduleRow } from "../store/schedule-store.js";
import { nextFire } from "./cron-time.js";

/** Tunables of scheduled runs. */
export interface SchedulePolicy {
  /** Delay before retrying after the first consecutive failure; doubled for each further one. */
  backoffBaseMs: number;
  /** Longest retry delay. */
  backoffMaxMs: number;
  /**
   * How long a claimed run may hold its segment: a run older than this is taken to belong to a
   * replica that died, and the next due run starts. Must exceed the longest evaluation.
   */
  leaseMs: number;
}

export const DEFAULT_SCHEDULE_POLICY: SchedulePolicy = {
  backoffBaseMs: 60_000,
  backoffMaxMs: 3_600_000,
  leaseMs: 30 * 60_000,
};

/** The segment fields scheduling looks at. */
export interface ScheduledSegment {
  id: string;
  type: SegmentType;
  status: SegmentStatus;
  schedule: Schedule | null;
}

/** The identity of a schedule, "cron␟time zone"; null when it never fires (no cron). */
export function scheduleKey(cron: string | null, timeZone: string | null): string | null {
  if (cron === null || cron.trim() === "") return null;
  return `${cron}\u241f${timeZone === null || timeZone === "" ? "UTC" : timeZone}`;
}

/** The key a segment should be armed with: set for DYNAMIC segments with a cron that are ACTIVE or PAUSED (a PAUSED one records skips). */
export function desiredKey(segment: ScheduledSegment): string | null {
  if (segment.type !== "DYNAMIC" || (segment.status !== "ACTIVE" && segment.status !== "PAUSED")) return null;
  return scheduleKey(segment.schedule?.cron ?? null, segment.schedule?.timeZone ?? null);
}

/** When a newly armed schedule first comes due: its next fire after `now` (a new schedule does not run at once). */
export function firstRunAt(segment: ScheduledSegment, now: Date): Date | null {
  const key = desiredKey(segment);
  if (key === null || segment.schedule === null) return null;
  return nextFire(segment.schedule.cron, segment.schedule.timeZone, now);
}

/**
 * Decides a claimed row's due run at `now`. However many fires were missed (the service was down),
 * a due run happens once and next_run_at moves to the first fire after `now`. `runningHere` says
 * this process still has a run of the segment going, whatever the lease says.
 */
export function decideDue(row: ScheduleRow, now: Date, policy: SchedulePolicy, runningHere = false): DueDecision {
  if (row.nextRunAt === null || row.nextRunAt > now) return { kind: "none" };
  const key = scheduleKey(row.cron, row.timeZone);
  if (row.type !== "DYNAMIC" || key === null || (row.status !== "ACTIVE" && row.status !== "PAUSED")) return { kind: "disarm" };
  if (key !== row.armed) return { kind: "none" };
  const nextRunAt = nextFire(row.cron ?? "", row.timeZone ?? "UTC", now);
  if (row.status === "PAUSED") return { kind: "skip", reason: "skipped: the segment is PAUSED", nextRunAt };
  const leaseHeld = row.runningSince !== null && now.getTime() - row.runningSince.getTime() < policy.leaseMs;
  if (runningHere || leaseHeld) {
    const since = row.runningSince?.toISOString() ?? "earlier";
    return { kind: "skip", reason: `skipped: the previous scheduled run (started ${since}) is still going`, nextRunAt };
  }
  return { kind: "run", nextRunAt, runningSince: now };
}

/**
 * Where the schedule goes when the run that started at `runningSince` ends at `now`; null when
 * that run no longer holds the segment (its lease was taken over), so it must not touch the row.
 * Success keeps next_run_at (already moved on at the claim) and clears the failures; failure
 * counts one more and retries after the backoff — sooner than the next fire for a slow schedule,
 * later (skipping fires) for a fast one.
 */
export function settleRun(
  row: ScheduleRow,
  runningSince: Date,
  outcome: { error: string | null },
  now: Date,
  policy: SchedulePolicy,
): RunSettlement | null {
  if (row.runningSince === null || row.runningSince.getTime() !== runningSince.getTime()) return null;
  if (outcome.error === null) return { nextRunAt: row.nextRunAt, failures: 0, error: null };
  const failures = row.failures + 1;
  const nextRunAt = row.nextRunAt === null ? null : new Date(now.getTime() + backoffMs(failures, policy));
  return { nextRunAt, failures, error: outcome.error };
}

/** The retry delay after `failures` consecutive failures: base · 2^(failures−1), capped. */
export function backoffMs(failures: number, policy: SchedulePolicy): number {
  const exponent = Math.min(Math.max(failures - 1, 0), 30);
  return Math.min(policy.backoffBaseMs * 2 ** exponent, policy.backoffMaxMs);
}
