/**
 * The domain's vocabulary, shared by every layer: plain data, no behaviour, no I/O. The proto
 * messages are the wire form of these; src/grpc converts between the two.
 */

export const SEGMENT_TYPES = ["STATIC", "DYNAMIC", "EVERYONE"] as const;
/** How a segment's membership is managed. */
export type SegmentType = (typeof SEGMENT_TYPES)[number];

export const SEGMENT_STATUSES = ["DRAFT", "ACTIVE", "PAUSED", "ARCHIVED"] as const;
/** Where a segment is in its lifecycle. */
export type SegmentStatus = (typeof SEGMENT_STATUSES)[number];

/** What an API token may do: each role includes the ones before it (see src/auth/roles.ts). */
export type Role = "reader" | "writer" | "admin";

/** An analytics query, kept in the proto's JSON form (`{"sql": …}` or `{"filter": …}`). */
export type QueryDefinition = { sql: string } | { filter: unknown };

/** When a dynamic segment re-evaluates itself. */
export interface Schedule {
  cron: string;
  /** IANA time zone the cron expression and relative query windows are read in. */
  timeZone: string;
}

/** What an evaluation did. */
export interface EvaluationSummary {
  trigger: "MANUAL" | "SCHEDULE";
  startedAt: Date;
  durationMs: number;
  added: number;
  removed: number;
  total: number;
  error: string | null;
  version: number;
}

/** A segment's definition and the state of its membership. */
export interface Segment {
  id: string;
  name: string;
  description: string;
  type: SegmentType;
  status: SegmentStatus;
  query: QueryDefinition | null;
  schedule: Schedule | null;
  memberCount: number;
  /** Bumped by every membership change; 0 for a segment that never had members. */
  version: number;
  /** When the current version was committed; null before the first membership change. */
  versionAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
  archivedAt: Date | null;
  lastEvaluation: EvaluationSummary | null;
  /** Start of the latest successful evaluation (any trigger); null if none. Staleness counts from it. */
  lastSuccessAt: Date | null;
}

/** What caused a membership change, kept in the change log. */
export type ChangeTrigger = "ADD" | "REMOVE" | "IMPORT" | "QUERY" | "SUBTRACT" | "EVALUATION" | "SCHEDULE" | "ROLLBACK";

/** What a segment audit entry records. */
export type HistoryAction = "CREATE" | "UPDATE" | "ACTIVATE" | "PAUSE" | "RESUME" | "ARCHIVE" | "RESTORE";

/** One audit entry: a change to a segment's definition or status. */
export interface HistoryEntry {
  at: Date;
  action: HistoryAction;
  /** Who asked: the authenticated identity's audit name. */
  caller: string;
  /** Who the caller acted for, as the client declared it (`x-caller`); empty when not given. */
  onBehalfOf: string;
  fromStatus: SegmentStatus | null;
  toStatus: SegmentStatus;
  changedFields: string[];
}
