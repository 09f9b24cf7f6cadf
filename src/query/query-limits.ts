/**
 * The limits proto/segments/v1/segment.proto states for a Query, checked on the protobuf message
 * before anything else reads it: converting an out-of-range Timestamp or Duration to JSON throws,
 * and a tree no limit holds back is what every later stage (storage, listing, the SQL compiler)
 * would have to carry. Each failure names the field by its path, e.g.
 * `query.filter.all.filters[3].event.min_count`, and states the limit.
 */
import type { Duration, Timestamp } from "@bufbuild/protobuf/wkt";
import { InvalidArgumentError } from "../errors.js";
import {
  ComparisonOperator,
  type EventCondition,
  type Filter,
  type FilterGroup,
  type PropertyCondition,
  type PropertyValue,
  type Query,
  type TimeWindow,
} from "../gen/segments/v1/segment_pb.js";
import { isSegmentId } from "./segment-refs.js";

export const SQL_MAX_CHARS = 100_000;
export const FILTER_MAX_DEPTH = 32;
export const FILTER_MAX_NODES = 1_000;
export const GROUP_MAX_FILTERS = 100;
export const EVENT_NAME_MAX_CHARS = 200;
export const MIN_COUNT_MAX = 1_000_000;
export const WHERE_MAX = 20;
export const KEY_MAX_CHARS = 200;
export const STRING_VALUE_MAX_CHARS = 1_000;
/** Every name, key and string value of one filter together, in UTF-8 bytes (keeps a segment well under a message). */
export const FILTER_MAX_TEXT_BYTES = 1_048_576;
export const WINDOW_MAX_DAYS = 3_660;
const WINDOW_MAX_SECONDS = BigInt(WINDOW_MAX_DAYS * 86_400);
/** 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z: the range a Timestamp may hold (and JSON can spell). */
const TIMESTAMP_MIN_SECONDS = -62_135_596_800n;
const TIMESTAMP_MAX_SECONDS = 253_402_300_799n;
const NANOS_PER_SECOND = 1_000_000_000;

/** Operators that take no value, and the value kinds the others accept. */
const VALUE_KINDS: Record<ComparisonOperator, readonly PropertyValue["kind"]["case"][]> = {
  [ComparisonOperator.UNSPECIFIED]: [],
  [ComparisonOperator.EQ]: ["stringValue", "numberValue", "boolValue"],
  [ComparisonOperator.NEQ]: ["stringValue", "numberValue", "boolValue"],
  [ComparisonOperator.GT]: ["stringValue", "numberValue"],
  [ComparisonOperator.GTE]: ["stringValue", "numberValue"],
  [ComparisonOperator.LT]: ["stringValue", "numberValue"],
  [ComparisonOperator.LTE]: ["stringValue", "numberValue"],
  [ComparisonOperator.CONTAINS]: ["stringValue"],
  [ComparisonOperator.NOT_CONTAINS]: ["stringValue"],
  [ComparisonOperator.EXISTS]: [],
  [ComparisonOperator.NOT_EXISTS]: [],
};
const PROTO_KIND: Record<NonNullable<PropertyValue["kind"]["case"]>, string> = {
  stringValue: "string_value",
  numberValue: "number_value",
  boolValue: "bool_value",
};

/** What the walk has seen so far, for the whole-tree limits. */
interface Walk {
  /** The path of the tree's root, which whole-tree failures name. */
  root: string;
  nodes: number;
  textBytes: number;
}

/** Checks every limit of `query`; `field` is its path in the request. */
export function checkQueryLimits(query: Query, field = "query"): void {
  const { kind } = query;
  switch (kind.case) {
    case "sql":
      checkSql(kind.value, `${field}.sql`);
      return;
    case "filter":
      checkFilter(kind.value, `${field}.filter`, 1, { root: `${field}.filter`, nodes: 0, textBytes: 0 });
      return;
    default:
      throw new InvalidArgumentError(field, "must set sql or filter");
  }
}

function checkSql(sql: string, field: string): void {
  if (sql.trim() === "") throw new InvalidArgumentError(field, "must not be empty");
  if (overChars(sql, SQL_MAX_CHARS)) throw new InvalidArgumentError(field, `must be at most ${SQL_MAX_CHARS} characters`);
  checkNoNul(sql, field);
}

function checkFilter(filter: Filter, field: string, depth: number, walk: Walk): void {
  // Checked before descending, so recursion never goes deeper than the limit plus one.
  if (depth > FILTER_MAX_DEPTH) throw new InvalidArgumentError(field, `is nested deeper than the limit of ${FILTER_MAX_DEPTH} levels`);
  walk.nodes++;
  if (walk.nodes > FILTER_MAX_NODES) {
    throw new InvalidArgumentError(
      walk.root,
      `has more than ${FILTER_MAX_NODES.toLocaleString("en-US")} nodes (the limit); the excess starts at ${field}`,
    );
  }
  const { kind } = filter;
  switch (kind.case) {
    case "all":
    case "any":
      checkGroup(kind.value, `${field}.${kind.case}`, depth, walk);
      return;
    case "not":
      checkFilter(kind.value, `${field}.not`, depth + 1, walk);
      return;
    case "event":
      checkEvent(kind.value, `${field}.event`, walk);
      return;
    case "firstSeen":
      if (kind.value.within === undefined) throw new InvalidArgumentError(`${field}.first_seen.within`, "is required");
      checkWindow(kind.value.within, `${field}.first_seen.within`);
      return;
    case "property":
      checkProperty(kind.value, `${field}.property`, walk);
      return;
    case "memberOf":
      if (!isSegmentId(kind.value.segmentId)) {
        throw new InvalidArgumentError(
          `${field}.member_of.segment_id`,
          `${JSON.stringify(kind.value.segmentId.slice(0, 64))} is not a segment id (a UUID)`,
        );
      }
      return;
    default:
      throw new InvalidArgumentError(field, "must set one of all, any, not, event, first_seen, property or member_of");
  }
}

function checkGroup(group: FilterGroup, field: string, depth: number, walk: Walk): void {
  const count = group.filters.length;
  if (count === 0 || count > GROUP_MAX_FILTERS) {
    throw new InvalidArgumentError(`${field}.filters`, `must hold 1–${GROUP_MAX_FILTERS} filters; it holds ${count}`);
  }
  for (const [i, child] of group.filters.entries()) checkFilter(child, `${field}.filters[${i}]`, depth + 1, walk);
}

function checkEvent(event: EventCondition, field: string, walk: Walk): void {
  checkText(event.name, `${field}.name`, EVENT_NAME_MAX_CHARS, walk);
  if (event.minCount > MIN_COUNT_MAX) {
    throw new InvalidArgumentError(
      `${field}.min_count`,
      `must be at most ${MIN_COUNT_MAX.toLocaleString("en-US")}; it is ${event.minCount}`,
    );
  }
  if (event.within !== undefined) checkWindow(event.within, `${field}.within`);
  if (event.where.length > WHERE_MAX) {
    throw new InvalidArgumentError(`${field}.where`, `must hold at most ${WHERE_MAX} conditions; it holds ${event.where.length}`);
  }
  for (const [i, condition] of event.where.entries()) checkProperty(condition, `${field}.where[${i}]`, walk);
}

function checkProperty(condition: PropertyCondition, field: string, walk: Walk): void {
  checkText(condition.key, `${field}.key`, KEY_MAX_CHARS, walk);
  // A dot separates levels of nesting; an empty level can never address anything.
  if (condition.key.split(".").includes("")) {
    throw new InvalidArgumentError(`${field}.key`, "must not start or end with a dot or hold two dots in a row");
  }
  const allowed = VALUE_KINDS[condition.operator] as (typeof VALUE_KINDS)[ComparisonOperator] | undefined;
  if (allowed === undefined || condition.operator === ComparisonOperator.UNSPECIFIED) {
    throw new InvalidArgumentError(
      `${field}.operator`,
      "is required: one of EQ, NEQ, GT, GTE, LT, LTE, CONTAINS, NOT_CONTAINS, EXISTS, NOT_EXISTS",
    );
  }
  const operator = ComparisonOperator[condition.operator];
  const { value } = condition;
  if (allowed.length === 0) {
    if (value !== undefined) throw new InvalidArgumentError(`${field}.value`, `must be unset for ${operator}`);
    return;
  }
  const kind = value?.kind;
  if (kind?.case === undefined) throw new InvalidArgumentError(`${field}.value`, `is required for ${operator}`);
  if (!allowed.includes(kind.case)) {
    const names = allowed.map((k) => PROTO_KIND[k as keyof typeof PROTO_KIND]).join(" or ");
    throw new InvalidArgumentError(`${field}.value`, `${operator} compares with ${names}, not ${PROTO_KIND[kind.case]}`);
  }
  if (kind.case === "stringValue") checkText(kind.value, `${field}.value.string_value`, STRING_VALUE_MAX_CHARS, walk, 0);
  if (kind.case === "numberValue" && !Number.isFinite(kind.value)) {
    throw new InvalidArgumentError(`${field}.value.number_value`, `must be a finite number; it is ${kind.value}`);
  }
}

function checkWindow(window: TimeWindow, field: string): void {
  const { kind } = window;
  switch (kind.case) {
    case "last":
      checkDuration(kind.value, `${field}.last`);
      return;
    case "lastDays":
      if (kind.value < 1 || kind.value > WINDOW_MAX_DAYS) {
        throw new InvalidArgumentError(`${field}.last_days`, `must be 1–${WINDOW_MAX_DAYS.toLocaleString("en-US")}; it is ${kind.value}`);
      }
      return;
    case "since":
      checkTimestamp(kind.value, `${field}.since`);
      return;
    default:
      throw new InvalidArgumentError(field, "must set one of last, last_days or since");
  }
}

function checkDuration(duration: Duration, field: string): void {
  const { seconds, nanos } = duration;
  if (nanos <= -NANOS_PER_SECOND || nanos >= NANOS_PER_SECOND || (seconds > 0n && nanos < 0) || (seconds < 0n && nanos > 0)) {
    throw new InvalidArgumentError(field, "is not a valid Duration (nanos must be within ±999,999,999 and share the sign of seconds)");
  }
  if (seconds < 0n || (seconds === 0n && nanos <= 0)) throw new InvalidArgumentError(field, "must be positive");
  if (seconds > WINDOW_MAX_SECONDS || (seconds === WINDOW_MAX_SECONDS && nanos > 0)) {
    throw new InvalidArgumentError(
      field,
      `must be at most ${WINDOW_MAX_DAYS.toLocaleString("en-US")} days (${WINDOW_MAX_SECONDS}s); it is ${seconds}s`,
    );
  }
}

function checkTimestamp(timestamp: Timestamp, field: string): void {
  const { seconds, nanos } = timestamp;
  if (seconds < TIMESTAMP_MIN_SECONDS || seconds > TIMESTAMP_MAX_SECONDS || nanos < 0 || nanos >= NANOS_PER_SECOND) {
    throw new InvalidArgumentError(field, "must be a valid Timestamp from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z");
  }
}

/** Length (in code points, `min` at least), no U+0000, and the tree's running text total. */
function checkText(text: string, field: string, maxChars: number, walk: Walk, min = 1): void {
  if (text.length < min)
    throw new InvalidArgumentError(field, `must be ${min}–${maxChars.toLocaleString("en-US")} characters; it is empty`);
  if (overChars(text, maxChars)) throw new InvalidArgumentError(field, `must be at most ${maxChars.toLocaleString("en-US")} characters`);
  checkNoNul(text, field);
  walk.textBytes += Buffer.byteLength(text, "utf8");
  if (walk.textBytes > FILTER_MAX_TEXT_BYTES) {
    throw new InvalidArgumentError(
      walk.root,
      `holds more than ${FILTER_MAX_TEXT_BYTES.toLocaleString("en-US")} bytes of names, keys and string values in all (the limit); the excess starts at ${field}`,
    );
  }
}

/** Whether `text` has more than `max` code points; only lengths between max and 2·max need counting. */
function overChars(text: string, max: number): boolean {
  return text.length > max && (text.length > 2 * max || [...text].length > max);
}

function checkNoNul(text: string, field: string): void {
  if (text.includes("\u0000")) throw new InvalidArgumentError(field, "must not contain U+0000 (NUL)");
}
