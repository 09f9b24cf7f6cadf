/**
 * Queries are vetted when saved (issue 9, point 1 and the refusal list of its acceptance): SQL
 * goes through the real Postgres parser, filters' member_of leaves must name existing segments
 * and must not make a cycle. Refused definitions leave every segment as it was.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { BadRequestSchema } from "../../src/gen/google/rpc/error_details_pb.js";
import { type QuerySchema, SegmentType } from "../../src/gen/segments/v1/segment_pb.js";
import { useService } from "../support/service.js";
import { detail, failure } from "../support/status.js";
import { STORES } from "../support/stores.js";

type QueryInit = MessageInitShape<typeof QuerySchema>;
const sql = (value: string): QueryInit => ({ kind: { case: "sql", value } });
const memberOf = (segmentId: string): QueryInit => ({
  kind: { case: "filter", value: { kind: { case: "memberOf", value: { segmentId } } } },
});

describe.each(STORES)("query vetting on $name", (kind) => {
  const t = useService(kind);
  const dynamic = async (name: string, query: QueryInit) =>
    (await t.service.segments.createSegment({ name, type: SegmentType.DYNAMIC, query })).segment?.id ?? "";

  it("refuses every statement that is not one read-only SELECT, before anything runs", async () => {
    const before = (await t.service.segments.listSegments({ showArchived: true })).segments.length;
    const refused = [
      "DELETE FROM events",
      "SELECT 1; DROP TABLE events",
      "COMMIT; DROP TABLE events",
      "WITH d AS (DELETE FROM events RETURNING user_id) SELECT user_id FROM d",
      "SELECT user_id FROM events FOR UPDATE",
      "SELECT user_id INTO t FROM events",
      "COPY events TO STDOUT",
      "SET ROLE postgres",
      "SELECT set_config('role', 'postgres', true) AS user_id",
      "SELECT name FROM events",
      "SELECT FROM WHERE",
    ];
    for (const text of refused) {
      const error = await failure(dynamic(`Refused ${text}`, sql(text)));
      expect(error.code, text).toBe(status.INVALID_ARGUMENT);
      expect(detail(error, BadRequestSchema)?.fieldViolations[0]?.field, text).toBe("query.sql");
    }
    // The same checks guard UpdateSegment.
    const ok = await dynamic("Fine", sql("SELECT DISTINCT user_id FROM events WHERE name = 'pricing_view'"));
    const update = await failure(
      t.service.segments.updateSegment({ segmentId: ok, segment: { query: sql("DELETE FROM events") }, updateMask: { paths: ["query"] } }),
    );
    expect(detail(update, BadRequestSchema)?.fieldViolations[0]?.field).toBe("segment.query.sql");
    expect((await t.service.segments.listSegments({ showArchived: true })).segments.length).toBe(before + 1);
  });

  it("plans SQL when it is saved: a missing table or column is refused then, not at the first run", async () => {
    for (const text of ["SELECT user_id FROM no_such_table", "SELECT no_such_column AS user_id FROM events"]) {
      const error = await failure(dynamic(`Unplannable ${text}`, sql(text)));
      expect(error.code, text).toBe(status.INVALID_ARGUMENT);
      expect(detail(error, BadRequestSchema)?.fieldViolations[0]?.field, text).toBe("query.sql");
      expect(error.details, text).toContain("no_such");
    }
  });

  it("refuses a member_of naming no segment, and a member_of cycle", async () => {
    const ghost = "0190b6a0-0000-7000-8000-000000000000";
    const missing = await failure(dynamic("Ghost ref", memberOf(ghost)));
    expect(missing.code).toBe(status.INVALID_ARGUMENT);
    expect(missing.details).toContain(ghost);
    const converted = (await t.service.segments.createSegment({ name: "Converted", type: SegmentType.STATIC })).segment?.id ?? "";
    const a = await dynamic("A", memberOf(converted));
    const b = await dynamic("B", memberOf(a));
    const cycle = await failure(
      t.service.segments.updateSegment({ segmentId: a, segment: { query: memberOf(b) }, updateMask: { paths: ["query"] } }),
    );
    expect(cycle.code).toBe(status.INVALID_ARGUMENT);
    expect(cycle.details).toContain(`${a} → ${b} → ${a}`);
    const self = await failure(
      t.service.segments.updateSegment({ segmentId: b, segment: { query: memberOf(b) }, updateMask: { paths: ["query"] } }),
    );
    expect(self.code).toBe(status.INVALID_ARGUMENT);
    // Nothing changed: A still refers to Converted.
    const stored = (await t.service.segments.getSegment({ segmentId: a })).segment?.query;
    expect(stored?.kind.case === "filter" && stored.kind.value.kind.case === "memberOf" && stored.kind.value.kind.value.segmentId).toBe(
      converted,
    );
  });
});
