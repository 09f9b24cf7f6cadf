import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { InvalidArgumentError } from "../../src/errors.js";
import { ComparisonOperator, type FilterSchema, QuerySchema } from "../../src/gen/segments/v1/segment_pb.js";
import { checkQueryLimits } from "../../src/query/query-limits.js";

type FilterInit = MessageInitShape<typeof FilterSchema>;

const event = (over: Record<string, unknown> = {}): FilterInit => ({ kind: { case: "event", value: { name: "purchase", ...over } } });
const condition = (over: Record<string, unknown>) => ({
  key: "plan",
  operator: ComparisonOperator.EQ,
  value: { kind: { case: "stringValue" as const, value: "pro" } },
  ...over,
});
const property = (over: Record<string, unknown>): FilterInit => ({ kind: { case: "property", value: condition(over) } });
const all = (...filters: FilterInit[]): FilterInit => ({ kind: { case: "all", value: { filters } } });
const not = (filter: FilterInit): FilterInit => ({ kind: { case: "not", value: filter } });
const within = (kind: Record<string, unknown>) => event({ within: { kind } });
const nested = (depth: number): FilterInit => (depth === 1 ? event() : not(nested(depth - 1)));
const seconds = (s: bigint, nanos = 0) => ({ seconds: s, nanos });
const filterQuery = (filter: FilterInit) => create(QuerySchema, { kind: { case: "filter", value: filter } });

/** The InvalidArgumentError checking `filter` throws (field and message), or undefined when it passes. */
function verdict(query: ReturnType<typeof filterQuery>): { field: string; message: string } | undefined {
  try {
    checkQueryLimits(query);
    return undefined;
  } catch (error: unknown) {
    if (!(error instanceof InvalidArgumentError)) throw error;
    return { field: error.field, message: error.message };
  }
}

describe("checkQueryLimits", () => {
  const valid: [string, FilterInit][] = [
    ["an event", event({ minCount: 1_000_000, where: Array.from({ length: 20 }, () => condition({})) })],
    ["depth 32", nested(32)],
    [
      "1,000 nodes",
      all(
        ...Array.from({ length: 99 }, () => all(...Array.from({ length: 9 }, () => event()))),
        all(...Array.from({ length: 8 }, () => event())),
      ),
    ],
    [
      "every window at its bounds",
      all(within({ case: "last", value: seconds(3_660n * 86_400n) }), within({ case: "lastDays", value: 3_660 })),
    ],
    [
      "the earliest and latest Timestamp",
      all(
        within({ case: "since", value: seconds(-62_135_596_800n) }),
        within({ case: "since", value: seconds(253_402_300_799n, 999_999_999) }),
      ),
    ],
    ["EXISTS without a value", property({ operator: ComparisonOperator.EXISTS, value: undefined })],
    [
      "a 1,000-character string and nested key",
      property({ key: "address.city", value: { kind: { case: "stringValue", value: "é".repeat(1_000) } } }),
    ],
    ["a number with GT", property({ operator: ComparisonOperator.GT, value: { kind: { case: "numberValue", value: -1.5 } } })],
    ["first_seen", { kind: { case: "firstSeen", value: { within: { kind: { case: "lastDays", value: 7 } } } } }],
    ["member_of", not({ kind: { case: "memberOf", value: { segmentId: "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b" } } })],
  ];
  it.each(valid)("accepts %s", (_name, filter) => {
    expect(verdict(filterQuery(filter))).toBeUndefined();
  });

  const p = "query.filter";
  const refused: [string, FilterInit, string, string][] = [
    ["a filter with no kind", {}, p, "must set one of"],
    ["depth 33", nested(33), `${p}${".not".repeat(32)}`, "deeper than the limit of 32"],
    [
      "1,001 nodes",
      all(...Array.from({ length: 100 }, () => all(...Array.from({ length: 9 }, () => event())))),
      p,
      "more than 1,000 nodes",
    ],
    ["an empty group", all(), `${p}.all.filters`, "1–100"],
    ["a group of 101", all(...Array.from({ length: 101 }, () => event())), `${p}.all.filters`, "1–100"],
    ["an empty event name", event({ name: "" }), `${p}.event.name`, "1–200 characters"],
    ["an event name of 201 characters", event({ name: "e".repeat(201) }), `${p}.event.name`, "at most 200 characters"],
    ["an event name holding U+0000", event({ name: "a\u0000" }), `${p}.event.name`, "U+0000"],
    ["min_count 1,000,001", all(event(), event({ minCount: 1_000_001 })), `${p}.all.filters[1].event.min_count`, "at most 1,000,000"],
    ["21 where conditions", event({ where: Array.from({ length: 21 }, () => condition({})) }), `${p}.event.where`, "at most 20"],
    ["an empty key", property({ key: "" }), `${p}.property.key`, "1–200 characters"],
    ["a key of 201 characters", property({ key: "k".repeat(201) }), `${p}.property.key`, "at most 200"],
    ["a key with an empty level", property({ key: "a..b" }), `${p}.property.key`, "two dots"],
    ["operator UNSPECIFIED", property({ operator: ComparisonOperator.UNSPECIFIED }), `${p}.property.operator`, "is required"],
    ["an unknown operator", property({ operator: 99 }), `${p}.property.operator`, "is required"],
    ["EQ without a value", property({ value: undefined }), `${p}.property.value`, "required for EQ"],
    ["EQ with an empty value", property({ value: {} }), `${p}.property.value`, "required for EQ"],
    ["NOT_EXISTS with a value", property({ operator: ComparisonOperator.NOT_EXISTS }), `${p}.property.value`, "must be unset"],
    [
      "CONTAINS with a number",
      property({ operator: ComparisonOperator.CONTAINS, value: { kind: { case: "numberValue", value: 1 } } }),
      `${p}.property.value`,
      "string_value",
    ],
    [
      "GT with a bool",
      property({ operator: ComparisonOperator.GT, value: { kind: { case: "boolValue", value: true } } }),
      `${p}.property.value`,
      "not bool_value",
    ],
    [
      "a string value of 1,001 characters",
      property({ value: { kind: { case: "stringValue", value: "v".repeat(1_001) } } }),
      `${p}.property.value.string_value`,
      "at most 1,000",
    ],
    [
      "a string value of 20 MiB",
      property({ value: { kind: { case: "stringValue", value: "v".repeat(20 << 20) } } }),
      `${p}.property.value.string_value`,
      "at most 1,000",
    ],
    ["NaN", property({ value: { kind: { case: "numberValue", value: Number.NaN } } }), `${p}.property.value.number_value`, "finite"],
    [
      "Infinity in where",
      event({ where: [condition({ value: { kind: { case: "numberValue", value: Number.POSITIVE_INFINITY } } })] }),
      `${p}.event.where[0].value.number_value`,
      "finite",
    ],
    ["a window with no kind", event({ within: {} }), `${p}.event.within`, "must set one of last"],
    ["a zero Duration", within({ case: "last", value: seconds(0n) }), `${p}.event.within.last`, "positive"],
    ["a negative Duration", within({ case: "last", value: seconds(-5n) }), `${p}.event.within.last`, "positive"],
    [
      "a Duration of 3,660 days and 1 ns",
      within({ case: "last", value: seconds(3_660n * 86_400n, 1) }),
      `${p}.event.within.last`,
      "at most 3,660 days",
    ],
    ["a Duration of 1e12 s", within({ case: "last", value: seconds(1_000_000_000_000n) }), `${p}.event.within.last`, "at most 3,660 days"],
    ["a Duration with mixed signs", within({ case: "last", value: seconds(5n, -1) }), `${p}.event.within.last`, "not a valid Duration"],
    ["last_days 0", within({ case: "lastDays", value: 0 }), `${p}.event.within.last_days`, "1–3,660"],
    ["last_days 3,661", within({ case: "lastDays", value: 3_661 }), `${p}.event.within.last_days`, "1–3,660"],
    ["a Timestamp in year 10000", within({ case: "since", value: seconds(253_402_300_800n) }), `${p}.event.within.since`, "9999-12-31"],
    ["a Timestamp before year 1", within({ case: "since", value: seconds(-62_135_596_801n) }), `${p}.event.within.since`, "0001-01-01"],
    ["a Timestamp with negative nanos", within({ case: "since", value: seconds(0n, -1) }), `${p}.event.within.since`, "valid Timestamp"],
    ["first_seen without a window", { kind: { case: "firstSeen", value: {} } }, `${p}.first_seen.within`, "is required"],
    ["member_of without an id", { kind: { case: "memberOf", value: {} } }, `${p}.member_of.segment_id`, "is not a segment id"],
    [
      "member_of with an upper-case id",
      all(event(), { kind: { case: "memberOf", value: { segmentId: "0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B" } } }),
      `${p}.all.filters[1].member_of.segment_id`,
      "is not a segment id (a UUID)",
    ],
    [
      "more than 1 MiB of text in all",
      all(
        ...Array.from({ length: 60 }, () =>
          event({
            where: Array.from({ length: 20 }, () => condition({ value: { kind: { case: "stringValue", value: "v".repeat(1_000) } } })),
          }),
        ),
      ),
      p,
      "1,048,576 bytes",
    ],
  ];
  it.each(refused)("refuses %s", (_name, filter, field, message) => {
    const answer = verdict(filterQuery(filter));
    expect(answer?.field).toBe(field);
    expect(answer?.message).toContain(message);
  });

  it("checks the SQL form and the oneof, under the field path it is given", () => {
    const sql = (text: string) => create(QuerySchema, { kind: { case: "sql", value: text } });
    expect(() => checkQueryLimits(sql("SELECT 1 AS user_id"))).not.toThrow();
    expect(() => checkQueryLimits(sql("x".repeat(100_000)))).not.toThrow();
    expect(() => checkQueryLimits(sql("x".repeat(100_001)), "segment.query")).toThrow(
      "segment.query.sql: must be at most 100000 characters",
    );
    expect(() => checkQueryLimits(sql("  "))).toThrow("query.sql: must not be empty");
    expect(() => checkQueryLimits(sql("SELECT '\u0000'"))).toThrow("query.sql: must not contain U+0000");
    expect(() => checkQueryLimits(create(QuerySchema, {}))).toThrow("query: must set sql or filter");
  });
});
