/**
 * All SQL about segments, users and membership history. Methods that must share a transaction
 * take the Queryable to run on; the service decides where transactions begin and end.
 */
import { AlreadyExistsError } from "../errors.js";
import type {
  ChangeTrigger,
  EvaluationSummary,
  HistoryAction,
  HistoryEntry,
  QueryDefinition,
  Segment,
  SegmentStatus,
  SegmentType,
} from "../model.js";
import type { Database, Queryable } from "./database.js";
import { isUniqueViolation } from "./sql-errors.js";

interface SegmentRow {
  id: string;
  name: string;
  description: string;
  type: SegmentType;
  status: SegmentStatus;
  query: QueryDefinition | null;
  schedule_cron: string | null;
  schedule_time_zone: string | null;
  member_count: number;
  version: number;
  version_at: Date | null;
  created_at: Date;
  updated_at: Date;
  archived_at: Date | null;
  last_evaluation: (Omit<EvaluationSummary, "startedAt"> & { startedAt: string }) | null;
  last_success_at: Date | null;
}

/** One row of the change log, as written. */
export interface ChangeRecord {
  segmentId: string;
  version: number;
  added: Uint8Array;
  removed: Uint8Array;
  addedCount: number;
  removedCount: number;
  memberCount: number;
  trigger: ChangeTrigger;
  at: Date;
}

/** What the change feed needs to know of a logged change before reading its bitmaps. */
export interface ChangeInfo {
  version: number;
  at: Date;
  memberCount: number;
  /** Size of the added and removed bitmaps together. */
  bytes: number;
}

/** A change-log row as read back for replay. */
export interface StoredChange {
  version: number;
  added: Uint8Array;
  removed: Uint8Array;
}

interface HistoryRow {
  seq: number;
  at: Date;
  action: HistoryAction;
  caller: string;
  on_behalf_of: string;
  from_status: SegmentStatus | null;
  to_status: SegmentStatus;
  changed_fields: string[];
}

/** Thrown when a segment's version moved under a writer: another process changed it. */
export class VersionConflictError extends Error {}

const SEGMENT_COLUMNS = `id, name, description, type, status, query, schedule_cron, schedule_time_zone,
  member_count, version, version_at, created_at, updated_at, archived_at, last_evaluation, last_success_at`;

/** Persistence for segments, the user directory and the membership change log. */
export class SegmentStore {
  constructor(readonly db: Database) {}

  /** Runs `fn` in one transaction; an aborted `signal` before COMMIT rolls it back. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>, signal?: AbortSignal): Promise<T> {
    return this.db.transaction(fn, signal);
  }

  /** Every segment, archived included (start-up). */
  async loadSegments(): Promise<Segment[]> {
    const rows = await this.db.query<SegmentRow>(`SELECT ${SEGMENT_COLUMNS} FROM segments ORDER BY id`);
    return rows.map(toSegment);
  }

  /** Inserts a new segment with its CREATE audit entry; a live segment with the same name → AlreadyExistsError. */
  async insertSegment(segment: Segment, entry: HistoryEntry, signal?: AbortSignal): Promise<void> {
    try {
      await this.db.transaction(async (tx) => {
        await tx.query(
          `INSERT INTO segments (${SEGMENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
          Object.values(segmentParams(segment)),
        );
        await appendHistory(tx, segment.id, entry);
      }, signal);
    } catch (error: unknown) {
      throw await this.nameTaken(error, segment.name);
    }
  }

  /**
   * Writes a segment's definition and status with the audit entry that explains it. Membership
   * counters and the evaluation fields are not written here: their own writers own them.
   */
  async updateSegment(segment: Segment, entry: HistoryEntry, signal?: AbortSignal): Promise<void> {
    const p = segmentParams(segment);
    try {
      await this.db.transaction(async (tx) => {
        await tx.query(
          `UPDATE segments SET name = $2, description = $3, type = $4, status = $5, query = $6, schedule_cron = $7,
             schedule_time_zone = $8, updated_at = $9, archived_at = $10 WHERE id = $1`,
          [p.id, p.name, p.description, p.type, p.status, p.query, p.schedule_cron, p.schedule_time_zone, p.updated_at, p.archived_at],
        );
        await appendHistory(tx, segment.id, entry);
      }, signal);
    } catch (error: unknown) {
      throw await this.nameTaken(error, segment.name);
    }
  }

  /** Up to `limit` audit entries of a segment, newest first, older than `beforeSeq` (0: from the newest). */
  async listHistory(segmentId: string, beforeSeq: number, limit: number): Promise<(HistoryEntry & { seq: number })[]> {
    const rows = await this.db.query<HistoryRow>(
      `SELECT seq, at, action, caller, on_behalf_of, from_status, to_status, changed_fields FROM segment_history
       WHERE segment_id = $1 AND ($2::bigint = 0 OR seq < $2) ORDER BY seq DESC LIMIT $3`,
      [segmentId, beforeSeq, limit],
    );
    return rows.map((row) => ({
      seq: row.seq,
      at: row.at,
      action: row.action,
      caller: row.caller,
      onBehalfOf: row.on_behalf_of,
      fromStatus: row.from_status,
      toStatus: row.to_status,
      changedFields: row.changed_fields,
    }));
  }

  /** Bytes of the change log and of snapshots on disk, indexes and TOAST included. */
  async storageBytes(): Promise<{ changeLog: number; snapshots: number }> {
    const rows = await this.db.query<{ change_log: number; snapshots: number }>(
      `SELECT pg_total_relation_size('membership_changes')::float8 AS change_log,
              pg_total_relation_size('membership_snapshots')::float8 AS snapshots`,
    );
    return { changeLog: rows[0]?.change_log ?? 0, snapshots: rows[0]?.snapshots ?? 0 };
  }

  /** Deletes a segment and its history. */
  async deleteSegment(id: string, signal?: AbortSignal): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.query("DELETE FROM segments WHERE id = $1", [id]);
    }, signal);
  }

  /**
   * Appends one membership version and moves the segment's version and count with it.
   * `expectedVersion` guards against a writer this process does not know about.
   */
  async appendChange(tx: Queryable, change: ChangeRecord): Promise<void> {
    const updated = await tx.query(
      "UPDATE segments SET version = $2, member_count = $3, version_at = $5 WHERE id = $1 AND version = $4 RETURNING id",
      [change.segmentId, change.version, change.memberCount, change.version - 1, change.at],
    );
    if (updated.length === 0) throw new VersionConflictError(`segment ${change.segmentId} is no longer at version ${change.version - 1}`);
    await tx.query(
      `INSERT INTO membership_changes
         (segment_id, version, added, removed, added_count, removed_count, member_count, trigger, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [
        change.segmentId,
        change.version,
        change.added,
        change.removed,
        change.addedCount,
        change.removedCount,
        change.memberCount,
        change.trigger,
        change.at,
      ],
    );
  }

  /** The newest snapshot of a segment at or before `atOrBefore` (default: the newest of all). */
  async latestSnapshot(
    segmentId: string,
    atOrBefore = Number.MAX_SAFE_INTEGER,
    q: Queryable = this.db,
  ): Promise<{ version: number; members: Uint8Array } | undefined> {
    const rows = await q.query<{ version: number; members: Uint8Array }>(
      "SELECT version, members FROM membership_snapshots WHERE segment_id = $1 AND version <= $2 ORDER BY version DESC LIMIT 1",
      [segmentId, atOrBefore],
    );
    return rows[0];
  }

  /** Up to `limit` changes of a segment in (afterVersion, upTo], in version order (replay, paged). */
  async loadChanges(
    segmentId: string,
    afterVersion: number,
    limit: number,
    upTo = Number.MAX_SAFE_INTEGER,
    q: Queryable = this.db,
  ): Promise<StoredChange[]> {
    return q.query<StoredChange>(
      `SELECT version, added, removed FROM membership_changes
       WHERE segment_id = $1 AND version > $2 AND version <= $4 ORDER BY version LIMIT $3`,
      [segmentId, afterVersion, limit, upTo],
    );
  }

  /**
   * Up to `limit` changes of a segment in (afterVersion, upTo], in version order, without their
   * bitmaps (octet_length reads a TOASTed value's header, not the value): the change feed pages
   * through these and reads the bitmaps (loadChanges) in batches of bounded size.
   */
  async changeInfo(segmentId: string, afterVersion: number, upTo: number, limit: number): Promise<ChangeInfo[]> {
    return this.db.query<ChangeInfo>(
      `SELECT version, created_at AS at, member_count AS "memberCount", octet_length(added) + octet_length(removed) AS bytes
       FROM membership_changes WHERE segment_id = $1 AND version > $2 AND version <= $3 ORDER BY version LIMIT $4`,
      [segmentId, afterVersion, upTo, limit],
    );
  }

  /** The oldest version of a segment that can still be rebuilt. */
  async historyFrom(segmentId: string, q: Queryable = this.db): Promise<number> {
    const rows = await q.query<{ history_from: number }>("SELECT history_from FROM segments WHERE id = $1", [segmentId]);
    return rows[0]?.history_from ?? 0;
  }

  /** Stores the full membership of a segment at `version` (compaction; idempotent). */
  async insertSnapshot(segmentId: string, version: number, members: Uint8Array, at: Date): Promise<void> {
    await this.db.query(
      `INSERT INTO membership_snapshots (segment_id, version, members, created_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (segment_id, version) DO NOTHING`,
      [segmentId, version, members, at],
    );
  }

  /**
   * Segments with history to prune: the newest snapshot taken before `horizon` is newer than the
   * oldest version they still keep. That snapshot becomes the base later versions rebuild from.
   */
  async pruneCandidates(horizon: Date): Promise<{ segmentId: string; base: number }[]> {
    return this.db.query<{ segmentId: string; base: number }>(
      `SELECT s.segment_id AS "segmentId", max(s.version) AS base
       FROM membership_snapshots s JOIN segments g ON g.id = s.segment_id
       WHERE s.created_at <= $1 GROUP BY s.segment_id, g.history_from HAVING max(s.version) > g.history_from`,
      [horizon],
    );
  }

  /** Drops every change up to `base` and every snapshot before it; `base` becomes the oldest version. */
  async pruneHistory(segmentId: string, base: number): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.query("DELETE FROM membership_changes WHERE segment_id = $1 AND version <= $2", [segmentId, base]);
      await tx.query("DELETE FROM membership_snapshots WHERE segment_id = $1 AND version < $2", [segmentId, base]);
      await tx.query("UPDATE segments SET history_from = $2 WHERE id = $1 AND history_from < $2", [segmentId, base]);
    });
  }

  /** For a violated live-name index: ALREADY_EXISTS naming the segment that holds the name. */
  private async nameTaken(error: unknown, name: string): Promise<unknown> {
    if (!isUniqueViolation(error, "segments_live_name")) return error;
    const rows = await this.db
      .query<{ id: string; name: string }>("SELECT id, name FROM segments WHERE lower(name) = lower($1) AND status <> 'ARCHIVED'", [name])
      .catch(() => []);
    const holder = rows[0];
    const who = holder === undefined ? "another segment" : `segment ${holder.id} (${JSON.stringify(holder.name)})`;
    return new AlreadyExistsError(
      "segment",
      holder?.id ?? name,
      `the name is taken by ${who}; names are unique, ignoring case, among segments that are not archived`,
    );
  }

  /** One segment's row as stored (catching up after another writer moved it). */
  async loadSegment(id: string): Promise<Segment | undefined> {
    const rows = await this.db.query<SegmentRow>(`SELECT ${SEGMENT_COLUMNS} FROM segments WHERE id = $1`, [id]);
    return rows[0] === undefined ? undefined : toSegment(rows[0]);
  }
}

/** Column values of a segment, in SEGMENT_COLUMNS order. */
function segmentParams(s: Segment) {
  return {
    id: s.id,
    name: s.name,
    description: s.description,
    type: s.type,
    status: s.status,
    query: s.query === null ? null : JSON.stringify(s.query),
    schedule_cron: s.schedule?.cron ?? null,
    schedule_time_zone: s.schedule?.timeZone ?? null,
    member_count: s.memberCount,
    version: s.version,
    version_at: s.versionAt,
    created_at: s.createdAt,
    updated_at: s.updatedAt,
    archived_at: s.archivedAt,
    last_evaluation: s.lastEvaluation === null ? null : JSON.stringify(s.lastEvaluation),
    last_success_at: s.lastSuccessAt,
  };
}

function toSegment(row: SegmentRow): Segment {
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    type: row.type,
    status: row.status,
    query: row.query,
    schedule: row.schedule_cron === null ? null : { cron: row.schedule_cron, timeZone: row.schedule_time_zone ?? "UTC" },
    memberCount: row.member_count,
    version: row.version,
    versionAt: row.version_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    archivedAt: row.archived_at,
    lastEvaluation: row.last_evaluation === null ? null : { ...row.last_evaluation, startedAt: new Date(row.last_evaluation.startedAt) },
    lastSuccessAt: row.last_success_at,
  };
}

async function appendHistory(tx: Queryable, segmentId: string, entry: HistoryEntry): Promise<void> {
  await tx.query(
    `INSERT INTO segment_history (segment_id, at, action, caller, on_behalf_of, from_status, to_status, changed_fields)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text[])`,
    [segmentId, entry.at, entry.action, entry.caller, entry.onBehalfOf, entry.fromStatus, entry.toStatus, entry.changedFields],
  );
}
