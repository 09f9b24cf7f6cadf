/** How the CLI shows segments and enums to people. */
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { EvaluationTrigger, type Segment, SegmentStatus, SegmentType, timestampDate } from "../client/index.js";

/** `SEGMENT_STATUS_ACTIVE` → `ACTIVE`. */
export function enumName(values: Record<number, string>, value: number): string {
  return values[value] ?? String(value);
}

/** A timestamp as ISO 8601, or "" when unset. */
export function when(time: Timestamp | undefined): string {
  return time === undefined ? "" : timestampDate(time).toISOString();
}

/** One segment as labelled lines. */
export function segmentDetails(segment: Segment | undefined): string {
  if (segment === undefined) return "";
  const query = segment.query?.kind;
  const lines: [string, string][] = [
    ["id", segment.id],
    ["name", segment.name],
    ["description", segment.description],
    ["type", enumName(SegmentType, segment.type)],
    ["status", enumName(SegmentStatus, segment.status)],
    ["members", segment.memberCount.toString()],
    ["version", segment.version.toString()],
    ["query", query?.case === "sql" ? query.value : query?.case === "filter" ? "(filter; --json shows it)" : ""],
    ["schedule", segment.schedule === undefined ? "" : `${segment.schedule.cron} (${segment.schedule.timeZone || "UTC"})`],
    ["created", when(segment.createTime)],
    ["updated", when(segment.updateTime)],
    ["last evaluation", segment.lastEvaluation === undefined ? "" : evaluationLine(segment.lastEvaluation)],
    ["stale", segment.stale ? "yes" : ""],
  ];
  return lines
    .filter(([, value]) => value !== "")
    .map(([label, value]) => `${`${label}:`.padEnd(17)}${value}`)
    .join("\n");
}

/** An evaluation in one line. */
export function evaluationLine(e: NonNullable<Segment["lastEvaluation"]>): string {
  const outcome = e.error === "" ? `+${e.added} −${e.removed} = ${e.total} (version ${e.version})` : `failed: ${e.error}`;
  return `${when(e.startTime)} ${enumName(EvaluationTrigger, e.trigger)} ${outcome}`;
}
