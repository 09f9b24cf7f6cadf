/**
 * Dynamic segments end to end (issue 9): events loaded through LoadEvents, a filter with a
 * member_of leaf and a SQL query evaluated into memberships that match an independent answer,
 * PopulateFromQuery and PreviewQuery, and failed runs (timeout, row cap) that leave the previous
 * membership and version in place and are listed by ListEvaluations — on both stores.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import { beforeAll, describe, expect, it } from "vitest";
import { type FilterSchema, type QuerySchema, SegmentType } from "../../src/gen/segments/v1/segment_pb.js";
import { EventFormat, PopulateMode } from "../../src/gen/segments/v1/segment_service_pb.js";
import { useService } from "../support/service.js";
import { failure } from "../support/status.js";
import { STORES } from "../support/stores.js";

type QueryInit = MessageInitShape<typeof QuerySchema>;
type FilterInit = MessageInitShape<typeof FilterSchema>;
const DAY = 86_400_000;
const sql = (value: string): QueryInit => ({ kind: { case: "sql", value } });

/** 300 users: every third viewed pricing recently, every fifth long ago, every seventh purchased. */
function sampleEvents(now: number): { lines: string[]; recentViewers: Set<string>; buyers: Set<string> } {
  const lines: string[] = [];
  const recentViewers = new Set<string>();
  const buyers = new Set<string>();
  const event = (user: string, name: string, daysAgo: number, properties: object = {}) =>
    lines.push(JSON.stringify({ user_id: user, name, ts: new Date(now - daysAgo * DAY).toISOString(), properties }));
  for (let n = 0; n < 300; n++) {
    const user = `eval_user_${n}`;
    event(user, "page_view", 2 + (n % 50));
    if (n % 3 === 0) {
      event(user, "pricing_view", 1 + (n % 20));
      recentViewers.add(user);
    }
    if (n % 5 === 0) event(user, "pricing_view", 60 + (n % 20));
    if (n % 7 === 0) {
      event(user, "purchase", 3, { amount: 10 + n });
      buyers.add(user);
    }
  }
  return { lines, recentViewers, buyers };
}

describe.each(STORES)("dynamic segments on $name", (kind) => {
  const t = useService(kind, { QUERY_TIMEOUT_MS: "1500", QUERY_ROW_CAP: "400" });
  const data = sampleEvents(Date.now());
  let converted = "";

  const members = async (segmentId: string) => {
    const out: string[] = [];
    let pageToken = "";
    do {
      const page = await t.service.segments.listMembers({ segmentId, pageSize: 10_000, pageToken });
      out.push(...page.userIds);
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    return out.sort();
  };
  const dynamic = async (name: string, query: QueryInit) => {
    const id = (await t.service.segments.createSegment({ name, type: SegmentType.DYNAMIC, query })).segment?.id ?? "";
    await t.service.segments.activateSegment({ segmentId: id });
    return id;
  };

  beforeAll(async () => {
    const loaded = await t.service.segments.loadEvents([
      { format: EventFormat.NDJSON, text: new TextEncoder().encode(`${data.lines.join("\n")}\n`) },
    ]);
    expect(Number(loaded.loaded)).toBe(data.lines.length);
    converted = (await t.service.segments.createSegment({ name: "Converted", type: SegmentType.STATIC })).segment?.id ?? "";
    await t.service.segments.addMembers({ segmentId: converted, userIds: [...data.buyers] });
    await t.service.segments.activateSegment({ segmentId: converted });
  });

  it("evaluates 'pricing_view in the last 30 days AND NOT member of converted' to exactly the right users", async () => {
    const filter: FilterInit = {
      kind: {
        case: "all",
        value: {
          filters: [
            { kind: { case: "event", value: { name: "pricing_view", minCount: 1, within: { kind: { case: "lastDays", value: 30 } } } } },
            { kind: { case: "not", value: { kind: { case: "memberOf", value: { segmentId: converted } } } } },
          ],
        },
      },
    };
    const id = await dynamic("Pricing, not converted", { kind: { case: "filter", value: filter } });
    const run = await t.service.segments.evaluateSegment({ segmentId: id });
    const expected = [...data.recentViewers].filter((u) => !data.buyers.has(u)).sort();
    expect(run.evaluation).toMatchObject({
      added: BigInt(expected.length),
      removed: 0n,
      total: BigInt(expected.length),
      version: 1n,
      error: "",
    });
    expect(await members(id)).toEqual(expected);
    const listed = await t.service.segments.listEvaluations({ segmentId: id });
    expect(listed.evaluations).toHaveLength(1);
    expect((await t.service.segments.getSegment({ segmentId: id })).segment?.lastEvaluation?.total).toBe(BigInt(expected.length));
  });

  it("evaluates SQL, populates a static segment, previews without writing", async () => {
    const buyers = await dynamic("Buyers", sql("SELECT DISTINCT user_id FROM events WHERE name = 'purchase'"));
    await t.service.segments.evaluateSegment({ segmentId: buyers });
    expect(await members(buyers)).toEqual([...data.buyers].sort());

    const target = (await t.service.segments.createSegment({ name: "Populated", type: SegmentType.STATIC })).segment?.id ?? "";
    const added = await t.service.segments.populateFromQuery({
      segmentId: target,
      mode: PopulateMode.ADD,
      query: sql("SELECT user_id FROM events WHERE name = 'pricing_view'"),
    });
    expect(added).toMatchObject({ version: 1n });
    const removed = await t.service.segments.populateFromQuery({
      segmentId: target,
      mode: PopulateMode.REMOVE,
      query: sql("SELECT user_id FROM events WHERE name = 'purchase'"),
    });
    expect(removed).toMatchObject({ version: 2n });
    const viewers = new Set(
      data.lines
        .map((l) => JSON.parse(l) as { user_id: string; name: string })
        .filter((e) => e.name === "pricing_view")
        .map((e) => e.user_id),
    );
    expect(await members(target)).toEqual([...viewers].filter((u) => !data.buyers.has(u)).sort());

    const everyone = (await t.service.segments.createSegment({ name: "All users", type: SegmentType.EVERYONE })).segment?.id ?? "";
    const users = async () => (await t.service.segments.getSegment({ segmentId: everyone })).segment?.memberCount;
    const usersBefore = await users();
    const preview = await t.service.segments.previewQuery({
      query: sql("SELECT 'never_seen_' || g AS user_id FROM generate_series(1, 25) g"),
      sampleSize: 5,
    });
    expect(preview.count).toBe(25n);
    expect(preview.sampleUserIds).toHaveLength(5);
    // Preview writes nothing: those users were not created.
    expect(await users()).toBe(usersBefore);
  });

  it("leaves the previous membership and version when a run fails, and lists the failure", async () => {
    const id = await dynamic("Fails later", sql("SELECT DISTINCT user_id FROM events WHERE name = 'purchase'"));
    await t.service.segments.evaluateSegment({ segmentId: id });
    const before = (await t.service.segments.getSegment({ segmentId: id })).segment;
    // Over the row cap (400 here): every event row (about 500).
    await t.service.segments.updateSegment({
      segmentId: id,
      segment: { query: sql("SELECT user_id FROM events") },
      updateMask: { paths: ["query"] },
    });
    const capped = await failure(t.service.segments.evaluateSegment({ segmentId: id }));
    expect(capped.code).toBe(status.RESOURCE_EXHAUSTED);
    const after = (await t.service.segments.getSegment({ segmentId: id })).segment;
    expect(after).toMatchObject({ version: before?.version, memberCount: before?.memberCount });
    expect(await members(id)).toEqual([...data.buyers].sort());
    const runs = (await t.service.segments.listEvaluations({ segmentId: id })).evaluations;
    expect(runs.map((r) => r.error === "")).toEqual([false, true]);
    expect(runs[0]?.error).toContain("400");
  });

  it("leaves the previous membership when a run passes the query timeout or is cancelled", async () => {
    const id = await dynamic("Slow later", sql("SELECT DISTINCT user_id FROM events WHERE name = 'purchase'"));
    await t.service.segments.evaluateSegment({ segmentId: id });
    const before = (await t.service.segments.getSegment({ segmentId: id })).segment;
    const slow = sql("SELECT DISTINCT user_id FROM events, pg_sleep(2.5) WHERE name = 'pricing_view'");
    await t.service.segments.updateSegment({ segmentId: id, segment: { query: slow }, updateMask: { paths: ["query"] } });
    // QUERY_TIMEOUT_MS is 1,500 here.
    const timedOut = await failure(t.service.segments.evaluateSegment({ segmentId: id }));
    expect(timedOut.code).toBe(status.DEADLINE_EXCEEDED);
    // A caller that gives up mid-run (its own deadline) leaves no trace either.
    const cancelled = await failure(t.service.segments.evaluateSegment({ segmentId: id }, { deadline: new Date(Date.now() + 500) }));
    expect(cancelled.code).toBe(status.DEADLINE_EXCEEDED);
    // Wait for the server to finish the abandoned run (the sleep holds PGlite's connection).
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect((await t.service.segments.getSegment({ segmentId: id })).segment).toMatchObject({
      version: before?.version,
      memberCount: before?.memberCount,
    });
    expect(await members(id)).toEqual([...data.buyers].sort());
    const runs = (await t.service.segments.listEvaluations({ segmentId: id })).evaluations;
    expect(runs.filter((r) => r.error !== "").length).toBeGreaterThanOrEqual(2);
  });

  it("refuses to evaluate a STATIC segment and one whose member_of target is DRAFT", async () => {
    const wrong = await failure(t.service.segments.evaluateSegment({ segmentId: converted }));
    expect(wrong.code).toBe(status.FAILED_PRECONDITION);
    const draft = (await t.service.segments.createSegment({ name: "Draft target", type: SegmentType.STATIC })).segment?.id ?? "";
    const id = await dynamic("Needs a live target", {
      kind: { case: "filter", value: { kind: { case: "memberOf", value: { segmentId: draft } } } },
    });
    const refused = await failure(t.service.segments.evaluateSegment({ segmentId: id }));
    expect(refused.code).toBe(status.FAILED_PRECONDITION);
    expect((await t.service.segments.getSegment({ segmentId: id })).segment?.version).toBe(0n);
  });
});
