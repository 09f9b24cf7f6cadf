/**
 * Compiles a Filter (already checked by query-limits) into an evaluation plan: every maximal part
 * of the tree without a member_of leaf becomes ONE SQL query over the events table returning a
 * single column `user_id`; member_of leaves, and the and / or / not nodes above them, stay plan
 * nodes that the evaluator combines in memory with segment bitmaps (another segment's membership
 * is in memory, not in the analytics database).
 *
 * Every constant — event names, key path elements, values, counts, window bounds, the evaluation
 * instant and the time zone — is a bound parameter, cast explicitly in the text so the driver's
 * own typing (pg or PGlite) does not matter. Only the events schema's identifiers are spliced,
 * after checking they are plain identifiers, and always double-quoted.
 *
 * Semantics (proto/segments/v1/segment.proto is the contract), with the choices it leaves open:
 * - Events after the evaluation instant are ignored everywhere (windows, "all time", first seen,
 *   latest values, the `not` universe), so a rerun at the same instant gives the same answer.
 * - A property is "carried" by an event whose properties hold the key path, even as JSON null: a
 *   later null therefore clears an earlier value. Among events at the same latest instant, the
 *   greatest JSON value wins (arbitrary but deterministic).
 * - Key paths address nested objects only (`->` with text): an array or scalar on the way means
 *   the key is missing.
 * - Strings order by code point (COLLATE "C"); numbers compare as numeric (exact, so 0.1 = 0.1).
 */
import type { Duration, Timestamp } from "@bufbuild/protobuf/wkt";
import { InvalidArgumentError } from "../errors.js";
import {
  ComparisonOperator,
  type EventCondition,
  type Filter,
  type PropertyCondition,
  type TimeWindow,
} from "../gen/segments/v1/segment_pb.js";

/** What the evaluator runs or combines; sets of user ids throughout. */
export type Plan =
  | { kind: "sql"; text: string; params: unknown[] }
  | { kind: "member_of"; segmentId: string }
  | { kind: "and" | "or"; children: Plan[] }
  | { kind: "not"; child: Plan; universe: { text: string; params: unknown[] } };

/** Where the events live: a table (optionally schema-qualified) and its four columns. */
export interface EventsSchema {
  table: string;
  userId: string;
  name: string;
  ts: string;
  properties: string;
}

/** The built-in table of migrations: events(user_id, name, ts, properties jsonb). */
export const DEFAULT_EVENTS_SCHEMA: Readonly<EventsSchema> = {
  table: "events",
  userId: "user_id",
  name: "name",
  ts: "ts",
  properties: "properties",
};

/** The inputs fixed per run besides the filter. */
export interface CompileOptions {
  /** The evaluation instant every relative window is resolved against. */
  evaluatedAt: Date;
  /** IANA time zone for `last_days` (the segment's schedule zone, "UTC" by default). */
  timeZone: string;
  /** Overrides of DEFAULT_EVENTS_SCHEMA for an existing events table. */
  schema?: Partial<EventsSchema>;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/;

/** Checks the events schema names plain identifiers (`schema.table` for the table); throws naming the bad one. */
export function checkEventsSchema(schema: EventsSchema): void {
  for (const [key, value] of Object.entries(schema) as [keyof EventsSchema, string][]) {
    const parts = key === "table" ? value.split(".") : [value];
    if (parts.length > 2 || !parts.every((part) => IDENTIFIER.test(part))) {
      throw new Error(
        `events schema ${key} ${JSON.stringify(value)} is not a plain identifier${key === "table" ? " or schema.table" : ""}`,
      );
    }
  }
}

/** Compiles a checked `filter` into a plan; SQL nodes return one column, user_id, without duplicates. */
export function compileFilter(filter: Filter, options: CompileOptions): Plan {
  const schema = { ...DEFAULT_EVENTS_SCHEMA, ...options.schema };
  checkEventsSchema(schema);
  if (Number.isNaN(options.evaluatedAt.getTime())) throw new Error("evaluatedAt is not a valid Date");
  checkTimeZone(options.timeZone);
  const context: Context = {
    evaluatedAt: options.evaluatedAt.toISOString(),
    timeZone: options.timeZone,
    t: {
      table: schema.table
        .split(".")
        .map((part) => quote(part))
        .join("."),
      userId: `e.${quote(schema.userId)}`,
      name: `e.${quote(schema.name)}`,
      ts: `e.${quote(schema.ts)}`,
      properties: `e.${quote(schema.properties)}`,
    },
  };
  return plan(filter, context);
}

interface Context {
  evaluatedAt: string;
  timeZone: string;
  /** Quoted identifiers; the columns are qualified with the alias `e`. */
  t: EventsSchema;
}

/**
 * One SQL text's parameters. Equal constants share one placeholder (a key repeated across a big
 * tree costs one parameter; Postgres allows 65,535), the evaluation instant and zone included.
 */
class Params {
  readonly values: unknown[] = [];
  private readonly seen = new Map<string, string>();
  constructor(readonly context: Context) {}

  /** A placeholder for `value` (a string or number), cast to `type`. */
  add(value: string | number, type: string): string {
    const key = `${type}:${typeof value}:${value}`;
    let placeholder = this.seen.get(key);
    if (placeholder === undefined) {
      this.values.push(value);
      placeholder = `$${this.values.length}::${type}`;
      this.seen.set(key, placeholder);
    }
    return placeholder;
  }
  at(): string {
    return this.add(this.context.evaluatedAt, "timestamptz");
  }
  tz(): string {
    return this.add(this.context.timeZone, "text");
  }
}

function plan(filter: Filter, context: Context): Plan {
  if (!hasMemberOf(filter)) return sqlPlan(filter, context);
  const { kind } = filter;
  switch (kind.case) {
    case "memberOf":
      return { kind: "member_of", segmentId: kind.value.segmentId };
    case "not":
      return { kind: "not", child: plan(kind.value, context), universe: universe(context) };
    case "all":
    case "any": {
      // Children without member_of share one query (their INTERSECT / UNION); the rest stay nodes.
      const pure = kind.value.filters.filter((child) => !hasMemberOf(child));
      const children = kind.value.filters.filter(hasMemberOf).map((child) => plan(child, context));
      if (pure.length > 0) {
        const params = new Params(context);
        const text = combine(
          pure.map((child) => sql(child, params)),
          kind.case === "all" ? "INTERSECT" : "UNION",
        );
        children.unshift({ kind: "sql", text, params: params.values });
      }
      const [only] = children;
      return children.length === 1 && only !== undefined ? only : { kind: kind.case === "all" ? "and" : "or", children };
    }
    default:
      throw new Error(`unreachable: ${kind.case} holds no member_of`);
  }
}

function sqlPlan(filter: Filter, context: Context): Plan {
  const params = new Params(context);
  const text = sql(filter, params);
  return { kind: "sql", text, params: params.values };
}

function universe(context: Context): { text: string; params: unknown[] } {
  const params = new Params(context);
  return { text: universeSql(params, context.t), params: params.values };
}

function hasMemberOf(filter: Filter): boolean {
  const { kind } = filter;
  switch (kind.case) {
    case "memberOf":
      return true;
    case "not":
      return hasMemberOf(kind.value);
    case "all":
    case "any":
      return kind.value.filters.some(hasMemberOf);
    default:
      return false;
  }
}

/** The SQL for a subtree without member_of. */
function sql(filter: Filter, params: Params): string {
  const { t } = params.context;
  const { kind } = filter;
  switch (kind.case) {
    case "all":
      return combine(
        kind.value.filters.map((child) => sql(child, params)),
        "INTERSECT",
      );
    case "any":
      return combine(
        kind.value.filters.map((child) => sql(child, params)),
        "UNION",
      );
    case "not":
      return combine([universeSql(params, t), sql(kind.value, params)], "EXCEPT");
    case "event":
      return eventSql(kind.value, params, t);
    case "firstSeen": {
      const window = kind.value.within;
      if (window === undefined) throw new InvalidArgumentError("first_seen.within", "is required");
      return `SELECT ${t.userId} AS user_id FROM ${t.table} e WHERE ${t.ts} <= ${params.at()} GROUP BY ${t.userId} HAVING ${windowSql(`min(${t.ts})`, window, params)}`;
    }
    case "property":
      return latestPropertySql(kind.value, params, t);
    default:
      throw new InvalidArgumentError("filter", `cannot compile a filter node of kind ${String(kind.case)} to SQL`);
  }
}

/** Set operation of whole queries, each parenthesised so precedence never matters. */
function combine(parts: string[], op: "INTERSECT" | "UNION" | "EXCEPT"): string {
  const [only] = parts;
  if (parts.length === 1 && only !== undefined) return only;
  return parts.map((part) => `(${part})`).join(` ${op} `);
}

/** Users with at least one event up to the evaluation instant: what `not` subtracts from. */
function universeSql(params: Params, t: EventsSchema): string {
  return `SELECT DISTINCT ${t.userId} AS user_id FROM ${t.table} e WHERE ${t.ts} <= ${params.at()}`;
}

function eventSql(event: EventCondition, params: Params, t: EventsSchema): string {
  const where = [`${t.name} = ${params.add(event.name, "text")}`, `${t.ts} <= ${params.at()}`];
  if (event.within !== undefined) where.push(windowSql(t.ts, event.within, params));
  for (const condition of event.where) where.push(predicate(path(t.properties, condition.key, params), condition, params));
  const having = event.minCount > 1 ? ` HAVING count(*) >= ${params.add(event.minCount, "integer")}` : "";
  return `SELECT ${t.userId} AS user_id FROM ${t.table} e WHERE ${where.join(" AND ")} GROUP BY ${t.userId}${having}`;
}

/**
 * The user's latest value of the key: the value on their most recent event (up to the evaluation
 * instant) carrying it. NOT_EXISTS also matches users with events but no carrying one.
 */
function latestPropertySql(condition: PropertyCondition, params: Params, t: EventsSchema): string {
  const value = path(t.properties, condition.key, params);
  const latest =
    `SELECT DISTINCT ON (${t.userId}) ${t.userId} AS user_id, ${value} AS v FROM ${t.table} e ` +
    `WHERE ${t.ts} <= ${params.at()} AND ${value} IS NOT NULL ORDER BY ${t.userId}, ${t.ts} DESC, v DESC`;
  if (condition.operator === ComparisonOperator.NOT_EXISTS) {
    return combine([universeSql(params, t), `SELECT l.user_id FROM (${latest}) l WHERE jsonb_typeof(l.v) <> 'null'`], "EXCEPT");
  }
  return `SELECT l.user_id FROM (${latest}) l WHERE ${predicate("l.v", condition, params)}`;
}

/** `properties -> 'a' -> 'b'` for key "a.b", each element a parameter. */
function path(properties: string, key: string, params: Params): string {
  return (
    properties +
    key
      .split(".")
      .map((element) => ` -> ${params.add(element, "text")}`)
      .join("")
  );
}

const SQL_OPERATORS: Partial<Record<ComparisonOperator, string>> = {
  [ComparisonOperator.EQ]: "=",
  [ComparisonOperator.NEQ]: "<>",
  [ComparisonOperator.GT]: ">",
  [ComparisonOperator.GTE]: ">=",
  [ComparisonOperator.LT]: "<",
  [ComparisonOperator.LTE]: "<=",
};

/**
 * A boolean (never NULL) for one comparison of the jsonb expression `x`. CASE, not AND, guards
 * the cast: SQL does not promise to evaluate an AND's left side first.
 */
function predicate(x: string, condition: PropertyCondition, params: Params): string {
  const { operator } = condition;
  if (operator === ComparisonOperator.EXISTS) return `coalesce(jsonb_typeof(${x}), 'null') <> 'null'`;
  if (operator === ComparisonOperator.NOT_EXISTS) return `coalesce(jsonb_typeof(${x}), 'null') = 'null'`;
  const kind = condition.value?.kind;
  const text = `(${x} #>> '{}')`;
  const guarded = (jsonType: string, test: string) => `CASE WHEN jsonb_typeof(${x}) = '${jsonType}' THEN ${test} ELSE false END`;
  if (operator === ComparisonOperator.CONTAINS || operator === ComparisonOperator.NOT_CONTAINS) {
    if (kind?.case !== "stringValue") throw new InvalidArgumentError("value", "CONTAINS compares with string_value");
    const found = operator === ComparisonOperator.CONTAINS ? "> 0" : "= 0";
    return guarded("string", `strpos(${text}, ${params.add(kind.value, "text")}) ${found}`);
  }
  const op = SQL_OPERATORS[operator];
  if (op === undefined) throw new InvalidArgumentError("operator", `${ComparisonOperator[operator] ?? operator} cannot be compiled`);
  switch (kind?.case) {
    case "stringValue":
      return guarded("string", `${text} COLLATE "C" ${op} ${params.add(kind.value, "text")}`);
    case "numberValue":
      return guarded("number", `${text}::numeric ${op} ${params.add(String(kind.value), "numeric")}`);
    case "boolValue":
      return guarded("boolean", `${text}::boolean ${op} ${params.add(String(kind.value), "boolean")}`);
    default:
      throw new InvalidArgumentError("value", `is required for ${ComparisonOperator[operator]}`);
  }
}

/** The lower bound of `window` on `ts`; every caller already bounds it above by the evaluation instant. */
function windowSql(ts: string, window: TimeWindow, params: Params): string {
  const { kind } = window;
  switch (kind.case) {
    case "last":
      // (evaluatedAt − duration, evaluatedAt]
      return `${ts} > ${params.at()} - ${params.add(durationSeconds(kind.value), "interval")}`;
    case "lastDays": {
      // [local midnight of (evaluation day − (n − 1)), evaluatedAt], midnights taken in the time zone
      const localDay = `date_trunc('day', ${params.at()} AT TIME ZONE ${params.tz()})`;
      const start = `(${localDay} - ${params.add(kind.value - 1, "integer")} * interval '1 day') AT TIME ZONE ${params.tz()}`;
      return `${ts} >= ${start}`;
    }
    case "since":
      // [since, evaluatedAt]
      return `${ts} >= ${params.add(timestampIso(kind.value), "timestamptz")}`;
    default:
      throw new InvalidArgumentError("within", "must set one of last, last_days or since");
  }
}

/** A Duration as interval text in seconds, e.g. "86400.000000001 seconds" (Postgres rounds to µs). */
function durationSeconds(duration: Duration): string {
  return `${duration.seconds}.${String(duration.nanos).padStart(9, "0")} seconds`;
}

/** A Timestamp as ISO-8601 with microseconds (timestamptz's precision). */
function timestampIso(timestamp: Timestamp): string {
  const iso = new Date(Number(timestamp.seconds) * 1000).toISOString();
  return iso.replace(/\.\d{3}Z$/, `.${String(Math.floor(timestamp.nanos / 1000)).padStart(6, "0")}Z`);
}

/** An identifier in double quotes (checkEventsSchema admits no quote to double). */
function quote(identifier: string): string {
  return `"${identifier.replaceAll('"', '""')}"`;
}

/**
 * A named IANA zone only: Postgres reads a bare offset such as "+01:00" POSIX-style (east and west
 * swapped), so offsets are refused rather than silently inverted.
 */
const ZONE_NAME = /^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/;

function checkTimeZone(timeZone: string): void {
  let known = ZONE_NAME.test(timeZone);
  try {
    new Intl.DateTimeFormat("en-US", { timeZone });
  } catch {
    known = false;
  }
  if (!known) throw new InvalidArgumentError("schedule.time_zone", `${JSON.stringify(timeZone)} is not an IANA time zone name`);
}
