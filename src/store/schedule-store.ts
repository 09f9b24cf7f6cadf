/**
 * All SQL about scheduled runs: the schedule columns of `segments` (migration 0007) through which
 * replicas agree on who runs what.
 *
 * Exactly once, by row claim rather than an advisory lock: a due run is taken by locking the
 * segment's row (SELECT … FOR UPDATE), deciding with the pure rules of src/schedule, and moving
 * next_run_at past `now` in the same transaction. A replica that waited on the lock then reads the
 * moved next_run_at and finds nothing due. A session advisory lock held for the run's duration
 * would need a connection pinned per run (and PGlite has one connection for everything), and a
 * transaction-scoped one ends before the run does; a row claim needs neither, survives restarts,
 * and `schedule_running_since` (a lease) keeps a second run from starting while one is going on
 * any replica.
 */
import type { SegmentStatus, SegmentType } from "../model.js";
import type { Database, Queryable } from "./database.js";
import { EvaluationStore } from "./evaluation-store.js";

/** A segment's schedule state as stored (read under a row lock). */
export interface ScheduleRow {
  id: string;
  type: SegmentType;
  status: SegmentStatus;
  cron: string | null;
  timeZone: string | null;
  memberCount: number;
  version: number;
  nextRunAt: Date | null;
  /** The scheduleKey next_run_at was computed from; null when not armed. */
  armed: string | null;
  runningSince: Date | null;
  failures: number;
}

/** What happens to a due run. */
export type DueDecision =
  /** Not due (any more): another replica claimed it, or the schedule changed and is re-armed elsewhere. */
  | { kind: "none" }
  /** The segment no longer runs on schedule (type, status or cron changed): clear next_run_at. */
  | { kind: "disarm" }
  /** Record a SKIPPED run and move next_run_at on. */
  | { kind: "skip"; reason: string; nextRunAt: Date | null }
  /** Start the run: next_run_at moves on now, and the segment is marked running since `runningSince`. */
  | { kind: "run"; nextRunAt: Date | null; runningSince: Date };

/** Where a segment's schedule state goes when a run ends. */
export interface RunSettlement {
  nextRunAt: Date | null;
  failures: number;
  error: string | null;
}

/** Where a segment's schedule stands, as the tick reads it for every armed segment. */
export interface ArmedSchedule {
  id: string;
  nextRunAt: Date | null;
  armed: string | null;
}

/** A segment's schedule bookkeeping, for staleness and next_evaluation_time. */
export interface ScheduleState {
  id: string;
  nextRunAt: Date | null;
  failures: number;
  /** The last failed scheduled run's error; null after a success. */
  error: string | null;
  /** Start of the latest successful evaluation, any trigger. */
  lastSuccessAt: Date | null;
  runningSince: Date | null;
}

/** What arming expects the stored segment to look like; a replica whose memory is behind loses. */
export interface ArmExpectation {
  type: SegmentType;
  status: SegmentStatus;
  cron: string | null;
  timeZone: string | null;
  /** The key currently stored (compare-and-set). */
  armed: string | null;
}

interface RawScheduleRow {
  id: string;
  type: SegmentType;
  status: SegmentStatus;
  schedule_cron: string | null;
  schedule_time_zone: string | null;
  member_count: number;
  version: number;
  next_run_at: Date | null;
  schedule_armed: string | null;
  schedule_running_since: Date | null;
  schedule_failures: number;
}

const ROW_COLUMNS = `id, type, status, schedule_cron, schedule_time_zone, member_count, version, next_run_at, schedule_armed,
  schedule_running_since, schedule_failures`;

/** Persistence for schedule claims. */
export class ScheduleStore {
  private readonly evaluations: EvaluationStore;

  constructor(readonly db: Database) {
    this.evaluations = new EvaluationStore(db);
  }

  /** Every segment that is armed (has a schedule key or a next_run_at). */
  async armed(): Promise<ArmedSchedule[]> {
    const rows = await this.db.query<{ id: string; next_run_at: Date | null; schedule_armed: string | null }>(
      "SELECT id, next_run_at, schedule_armed FROM segments WHERE schedule_armed IS NOT NULL OR next_run_at IS NOT NULL",
    );
    return rows.map((r) => ({ id: r.id, nextRunAt: r.next_run_at, armed: r.schedule_armed }));
  }

  /**
   * Compare-and-set of a segment's schedule: sets (or clears, with null) next_run_at and the key
   * when the stored row still matches `expect`. Resets the failure count. True when it was set.
   */
  async arm(id: string, expect: ArmExpectation, key: string | null, nextRunAt: Date | null): Promise<boolean> {
    const rows = await this.db.query<{ id: string }>(
      `UPDATE segments SET schedule_armed = $2, next_run_at = $3, schedule_failures = 0, schedule_error = NULL
       WHERE id = $1 AND type = $4 AND status = $5
         AND schedule_cron IS NOT DISTINCT FROM $6 AND schedule_time_zone IS NOT DISTINCT FROM $7
         AND schedule_armed IS NOT DISTINCT FROM $8
       RETURNING id`,
      [id, key, nextRunAt, expect.type, expect.status, expect.cron, expect.timeZone, expect.armed],
    );
    return rows.length > 0;
  }

  /**
   * Claims a segment's due run: locks the row, lets `decide` rule on it, and applies the ruling in
   * the same transaction — a SKIPPED run is recorded in evaluations there too. Returns the ruling.
   */
  async claim(id: string, startedAt: Date, decide: (row: ScheduleRow) => DueDecision): Promise<DueDecision> {
    return this.db.transaction(async (tx) => {
      const row = await lockRow(tx, id);
      if (row === null) return { kind: "none" } as const;
      const decision = decide(row);
      switch (decision.kind) {
        case "none":
          break;
        case "disarm":
          await tx.query("UPDATE segments SET next_run_at = NULL, schedule_armed = NULL WHERE id = $1", [id]);
          break;
        case "skip":
          await tx.query("UPDATE segments SET next_run_at = $2 WHERE id = $1", [id, decision.nextRunAt]);
          await this.evaluations.record(tx, {
            segmentId: id,
            trigger: "SCHEDULE",
            status: "SKIPPED",
            startedAt,
            durationMs: 0,
            added: 0,
            removed: 0,
            total: row.memberCount,
            version: row.version,
            error: decision.reason,
          });
          break;
        case "run":
          await tx.query("UPDATE segments SET next_run_at = $2, schedule_running_since = $3 WHERE id = $1", [
            id,
            decision.nextRunAt,
            decision.runningSince,
          ]);
          break;
      }
      return decision;
    });
  }

  /** Ends a claimed run: locks the row, lets `settle` rule on it (null: the run lost its claim; leave the row alone). */
  async finish(id: string, settle: (row: ScheduleRow) => RunSettlement | null): Promise<RunSettlement | null> {
    return this.db.transaction(async (tx) => {
      const row = await lockRow(tx, id);
      if (row === null) return null;
      const settlement = settle(row);
      if (settlement === null) return null;
      await tx.query(
        `UPDATE segments SET schedule_running_since = NULL, next_run_at = $2, schedule_failures = $3, schedule_error = $4
         WHERE id = $1`,
        [id, settlement.nextRunAt, settlement.failures, settlement.error],
      );
      return settlement;
    });
  }

  /** The schedule bookkeeping of one segment; null when it does not exist. */
  async state(id: string): Promise<ScheduleState | null> {
    const rows = await this.db.query<RawState>(`SELECT ${STATE_COLUMNS} FROM segments WHERE id = $1`, [id]);
    const row = rows[0];
    return row === undefined ? null : toState(row);
  }

  /** The schedule bookkeeping of every DYNAMIC segment (start-up, or a listing). */
  async states(): Promise<Map<string, ScheduleState>> {
    const rows = await this.db.query<RawState>(`SELECT ${STATE_COLUMNS} FROM segments WHERE type = 'DYNAMIC'`);
    return new Map(rows.map((row) => [row.id, toState(row)]));
  }
}

interface RawState {
  id: string;
  next_run_at: Date | null;
  schedule_failures: number;
  schedule_error: string | null;
  last_success_at: Date | null;
  schedule_running_since: Date | null;
}

const STATE_COLUMNS = "id, next_run_at, schedule_failures, schedule_error, last_success_at, schedule_running_since";

function toState(row: RawState): ScheduleState {
  return {
    id: row.id,
    nextRunAt: row.next_run_at,
    failures: Number(row.schedule_failures),
    error: row.schedule_error,
    lastSuccessAt: row.last_success_at,
    runningSince: row.schedule_running_since,
  };
}

async function lockRow(tx: Queryable, id: string): Promise<ScheduleRow | null> {
  const rows = await tx.query<RawScheduleRow>(`SELECT ${ROW_COLUMNS} FROM segments WHERE id = $1 FOR UPDATE`, [id]);
  const row = rows[0];
  if (row === undefined) return null;
  return {
    id: row.id,
    type: row.type,
    status: row.status,
    cron: row.schedule_cron,
    timeZone: row.schedule_time_zone,
    memberCount: Number(row.member_count),
    version: Number(row.version),
    nextRunAt: row.next_run_at,
    armed: row.schedule_armed,
    runningSince: row.schedule_running_since,
    failures: Number(row.schedule_failures),
  };
}
