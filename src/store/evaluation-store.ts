/**
 * All SQL about the evaluation history (ListEvaluations): one row per run of a DYNAMIC segment,
 * manual or scheduled, successful, failed or skipped. Rows are written by whoever ran (or
 * skipped) the run, in the caller's transaction when it passes one.
 */
import type { Database, Queryable } from "./database.js";

/** What started a run. */
export type EvaluationTriggerName = "MANUAL" | "SCHEDULE";

/** How a run ended. SKIPPED: a scheduled run that did not start (PAUSED, or the previous run still going). */
export type EvaluationStatus = "SUCCEEDED" | "FAILED" | "SKIPPED";

/** One evaluation run, as written. */
export interface EvaluationRecord {
  segmentId: string;
  trigger: EvaluationTriggerName;
  status: EvaluationStatus;
  /** When the run started (its evaluation instant). */
  startedAt: Date;
  durationMs: number;
  added: number;
  removed: number;
  total: number;
  /** The membership version current after the run. */
  version: number;
  /** Why it failed or was skipped; null on success. */
  error: string | null;
}

/** A stored run: the record plus its position in the history (page tokens carry `seq`). */
export interface StoredEvaluation extends EvaluationRecord {
  seq: number;
}

interface EvaluationRow {
  seq: number;
  segment_id: string;
  trigger: EvaluationTriggerName;
  status: EvaluationStatus;
  started_at: Date;
  duration_ms: number;
  added: number;
  removed: number;
  total: number;
  version: number;
  error: string | null;
}

/** Persistence for the evaluation history. */
export class EvaluationStore {
  constructor(readonly db: Database) {}

  /**
   * Appends one run on `q` (a transaction, or the database) and returns its seq. A SUCCEEDED or
   * FAILED run also becomes the segment's last_evaluation, and a SUCCEEDED one advances
   * last_success_at (which staleness reads), in the same statement.
   */
  async record(q: Queryable, row: EvaluationRecord): Promise<number> {
    const durationMs = Math.max(0, Math.round(row.durationMs));
    const summary =
      row.status === "SKIPPED"
        ? null
        : JSON.stringify({
            trigger: row.trigger,
            startedAt: row.startedAt,
            durationMs,
            added: row.added,
            removed: row.removed,
            total: row.total,
            error: row.error,
            version: row.version,
          });
    const rows = await q.query<{ seq: number }>(
      `WITH inserted AS (
         INSERT INTO evaluations (segment_id, trigger, status, started_at, duration_ms, added, removed, total, version, error)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         RETURNING seq
       ), latest AS (
         UPDATE segments
         SET last_evaluation = $11::jsonb,
             last_success_at = CASE WHEN $3 = 'SUCCEEDED' THEN GREATEST(last_success_at, $4) ELSE last_success_at END
         WHERE id = $1 AND $3 <> 'SKIPPED'
       )
       SELECT seq FROM inserted`,
      [
        row.segmentId,
        row.trigger,
        row.status,
        row.startedAt,
        durationMs,
        row.added,
        row.removed,
        row.total,
        row.version,
        row.error,
        summary,
      ],
    );
    const seq = rows[0]?.seq;
    if (seq === undefined) throw new Error("INSERT … RETURNING returned no row");
    return Number(seq);
  }

  /** Runs of a segment newest first: at most `limit`, with seq below `beforeSeq` (null: from the newest). */
  async list(segmentId: string, beforeSeq: number | null, limit: number): Promise<StoredEvaluation[]> {
    const rows = await this.db.query<EvaluationRow>(
      `SELECT seq, segment_id, trigger, status, started_at, duration_ms, added, removed, total, version, error
       FROM evaluations
       WHERE segment_id = $1 AND ($2::bigint IS NULL OR seq < $2::bigint)
       ORDER BY seq DESC
       LIMIT $3`,
      [segmentId, beforeSeq, limit],
    );
    return rows.map(toStored);
  }

  /** Deletes runs that started before `before` (history retention); returns how many. */
  async prune(before: Date): Promise<number> {
    const rows = await this.db.query<{ n: number }>(
      "WITH gone AS (DELETE FROM evaluations WHERE started_at < $1 RETURNING 1) SELECT count(*)::int AS n FROM gone",
      [before],
    );
    return rows[0]?.n ?? 0;
  }
}

function toStored(row: EvaluationRow): StoredEvaluation {
  return {
    seq: Number(row.seq),
    segmentId: row.segment_id,
    trigger: row.trigger,
    status: row.status,
    startedAt: row.started_at,
    durationMs: Number(row.duration_ms),
    added: Number(row.added),
    removed: Number(row.removed),
    total: Number(row.total),
    version: Number(row.version),
    error: row.error,
  };
}
