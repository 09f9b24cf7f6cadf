/** Conversions between the domain model and the protobuf messages. */
import { fromJson, type JsonValue, type MessageInitShape, toJson } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { InvalidArgumentError } from "../errors.js";
import {
  type EvaluationSummarySchema,
  EvaluationTrigger,
  type Query,
  QuerySchema,
  type Schedule,
  type SegmentSchema,
  SegmentStatus,
  SegmentType,
} from "../gen/segments/v1/segment_pb.js";
import type * as model from "../model.js";
import { checkQueryLimits } from "../query/query-limits.js";

/** The wire form of a segment. EVERYONE counts every user the directory knows. */
export function segmentToProto(
  segment: model.Segment,
  directorySize: number,
  freshness: { stale: boolean; nextEvaluationAt: Date | null },
): MessageInitShape<typeof SegmentSchema> {
  return {
    id: segment.id,
    name: segment.name,
    description: segment.description,
    type: SegmentType[segment.type],
    status: SegmentStatus[segment.status],
    query: segment.query === null ? undefined : fromJson(QuerySchema, segment.query as JsonValue),
    schedule: segment.schedule === null ? undefined : { cron: segment.schedule.cron, timeZone: segment.schedule.timeZone },
    memberCount: BigInt(segment.type === "EVERYONE" ? directorySize : segment.memberCount),
    version: BigInt(segment.version),
    versionTime: segment.versionAt === null ? undefined : timestampFromDate(segment.versionAt),
    createTime: timestampFromDate(segment.createdAt),
    updateTime: timestampFromDate(segment.updatedAt),
    archiveTime: segment.archivedAt === null ? undefined : timestampFromDate(segment.archivedAt),
    lastEvaluation: segment.lastEvaluation === null ? undefined : evaluationToProto(segment.lastEvaluation),
    stale: freshness.stale,
    nextEvaluationTime: freshness.nextEvaluationAt === null ? undefined : timestampFromDate(freshness.nextEvaluationAt),
  };
}

/** The wire form of one evaluation run. */
export function evaluationToProto(run: model.EvaluationSummary): MessageInitShape<typeof EvaluationSummarySchema> {
  return {
    trigger: EvaluationTrigger[run.trigger],
    startTime: timestampFromDate(run.startedAt),
    duration: durationFromMs(run.durationMs),
    added: BigInt(run.added),
    removed: BigInt(run.removed),
    total: BigInt(run.total),
    error: run.error ?? "",
    version: BigInt(run.version),
  };
}

/** A segment type from the wire; undefined for UNSPECIFIED (meaning "any" in filters). */
export function typeFromProto(type: SegmentType, field: string): model.SegmentType | undefined {
  if (type === SegmentType.UNSPECIFIED) return undefined;
  const name = SegmentType[type] as string | undefined;
  if (name === undefined) throw new InvalidArgumentError(field, `unknown segment type ${type}`);
  return name as model.SegmentType;
}

/** A segment status from the wire; undefined for UNSPECIFIED. */
export function statusFromProto(status: SegmentStatus, field: string): model.SegmentStatus | undefined {
  if (status === SegmentStatus.UNSPECIFIED) return undefined;
  const name = SegmentStatus[status] as string | undefined;
  if (name === undefined) throw new InvalidArgumentError(field, `unknown segment status ${status}`);
  return name as model.SegmentStatus;
}

/** A query from the wire, kept in its JSON form; null when absent. Its limits are checked first. */
export function queryFromProto(query: Query | undefined, field = "query"): model.QueryDefinition | null {
  if (query === undefined) return null;
  // toJson throws on values JSON cannot spell (a Timestamp in year 10000): refuse them here first.
  checkQueryLimits(query, field);
  return toJson(QuerySchema, query) as model.QueryDefinition;
}

/** A schedule from the wire; the time zone defaults to UTC. */
export function scheduleFromProto(schedule: Schedule | undefined): model.Schedule | null {
  if (schedule === undefined) return null;
  return { cron: schedule.cron, timeZone: schedule.timeZone === "" ? "UTC" : schedule.timeZone };
}
