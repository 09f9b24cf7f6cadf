/**
 * The lifecycle contract, table-driven: every (status × operation) pair answers the exact status
 * code, on both stores. Plus the effects users rely on: listing under concurrent creation,
 * membership kept through archive and restore, and the audit trail.
 */
import { status as code, Metadata } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { SegmentHistoryAction, SegmentStatus, SegmentType } from "../../src/gen/segments/v1/segment_pb.js";
import { type TestService, useService } from "../support/service.js";
import { failure } from "../support/status.js";
import { STORES } from "../support/stores.js";

type Status = "DRAFT" | "ACTIVE" | "PAUSED" | "ARCHIVED";
const STATUSES: Status[] = ["DRAFT", "ACTIVE", "PAUSED", "ARCHIVED"];
const OK = code.OK;
const FP = code.FAILED_PRECONDITION;

/** An operation on a segment that was brought to a status; `kind` picks the segment's type. */
interface Operation {
  name: string;
  kind: "STATIC" | "DYNAMIC";
  expected: Record<Status, code>;
  run(s: TestService, id: string, name: string): Promise<unknown>;
}

const everywhereButArchived = { DRAFT: OK, ACTIVE: OK, PAUSED: OK, ARCHIVED: FP };
const only = (status: Status) => Object.fromEntries(STATUSES.map((s) => [s, s === status ? OK : FP])) as Record<Status, code>;
const sql = { kind: { case: "sql" as const, value: "SELECT user_id FROM events" } };

const OPERATIONS: Operation[] = [
  {
    name: "create with the same name",
    kind: "STATIC",
    expected: { DRAFT: code.ALREADY_EXISTS, ACTIVE: code.ALREADY_EXISTS, PAUSED: code.ALREADY_EXISTS, ARCHIVED: OK },
    run: (s, _id, name) => s.segments.createSegment({ name: name.toUpperCase(), type: SegmentType.STATIC }),
  },
  {
    name: "update name",
    kind: "STATIC",
    expected: everywhereButArchived,
    run: (s, id, name) =>
      s.segments.updateSegment({ segmentId: id, segment: { name: `${name} renamed` }, updateMask: { paths: ["name"] } }),
  },
  {
    name: "update description",
    kind: "STATIC",
    expected: everywhereButArchived,
    run: (s, id) =>
      s.segments.updateSegment({ segmentId: id, segment: { description: "new words" }, updateMask: { paths: ["description"] } }),
  },
  {
    name: "update type",
    kind: "STATIC",
    expected: only("DRAFT"),
    run: (s, id) => s.segments.updateSegment({ segmentId: id, segment: { type: SegmentType.EVERYONE }, updateMask: { paths: ["type"] } }),
  },
  {
    name: "update query",
    kind: "DYNAMIC",
    // A live segment's query can be fixed; it takes effect at the next evaluation.
    expected: everywhereButArchived,
    run: (s, id) =>
      s.segments.updateSegment({
        segmentId: id,
        segment: { query: { kind: { case: "sql", value: "SELECT 2 AS user_id" } } },
        updateMask: { paths: ["query"] },
      }),
  },
  {
    name: "update schedule",
    kind: "DYNAMIC",
    expected: everywhereButArchived,
    run: (s, id) =>
      s.segments.updateSegment({
        segmentId: id,
        segment: { schedule: { cron: "0 * * * *", timeZone: "Europe/Paris" } },
        updateMask: { paths: ["schedule"] },
      }),
  },
  { name: "activate", kind: "STATIC", expected: only("DRAFT"), run: (s, id) => s.segments.activateSegment({ segmentId: id }) },
  { name: "pause", kind: "STATIC", expected: only("ACTIVE"), run: (s, id) => s.segments.pauseSegment({ segmentId: id }) },
  { name: "resume", kind: "STATIC", expected: only("PAUSED"), run: (s, id) => s.segments.resumeSegment({ segmentId: id }) },
  { name: "archive", kind: "STATIC", expected: everywhereButArchived, run: (s, id) => s.segments.archiveSegment({ segmentId: id }) },
  { name: "restore", kind: "STATIC", expected: only("ARCHIVED"), run: (s, id) => s.segments.restoreSegment({ segmentId: id }) },
  { name: "delete", kind: "STATIC", expected: only("DRAFT"), run: (s, id) => s.segments.deleteSegment({ segmentId: id }) },
  {
    name: "add members",
    kind: "STATIC",
    expected: everywhereButArchived,
    run: (s, id) => s.segments.addMembers({ segmentId: id, userIds: ["u1", "u2"] }),
  },
  {
    name: "remove members",
    kind: "STATIC",
    expected: everywhereButArchived,
    run: (s, id) => s.segments.removeMembers({ segmentId: id, userIds: ["u1"] }),
  },
  {
    name: "check membership",
    kind: "STATIC",
    expected: { DRAFT: FP, ACTIVE: OK, PAUSED: OK, ARCHIVED: FP },
    run: (s, id) => s.membership.checkMembership({ userId: "u1", segmentIds: [id] }),
  },
];

/** Creates a segment of `kind` and walks it to `status`. */
async function segmentIn(s: TestService, kind: Operation["kind"], status: Status, name: string): Promise<string> {
  const type = kind === "STATIC" ? SegmentType.STATIC : SegmentType.DYNAMIC;
  const { segment } = await s.segments.createSegment({ name, type, ...(kind === "DYNAMIC" ? { query: sql } : {}) });
  const id = segment?.id ?? "";
  if (kind === "STATIC") await s.segments.addMembers({ segmentId: id, userIds: ["u1"] }).catch(() => undefined);
  if (status === "ACTIVE" || status === "PAUSED") await s.segments.activateSegment({ segmentId: id });
  if (status === "PAUSED") await s.segments.pauseSegment({ segmentId: id });
  if (status === "ARCHIVED") await s.segments.archiveSegment({ segmentId: id });
  return id;
}

describe.each(STORES)("segment lifecycle on $name", (kind) => {
  const t = useService(kind);

  const cases = OPERATIONS.flatMap((op) => STATUSES.map((status) => ({ op, status, expected: op.expected[status] })));
  it.each(cases)("$op.name on $status → $expected", async ({ op, status, expected }) => {
    // update type needs a segment that never had members; the others start with one.
    const name = `${op.name} ${status}`;
    const id =
      op.name === "update type"
        ? await (async () => {
            const { segment } = await t.service.segments.createSegment({ name, type: SegmentType.STATIC });
            const segmentId = segment?.id ?? "";
            if (status !== "DRAFT") await t.service.segments.activateSegment({ segmentId });
            if (status === "PAUSED") await t.service.segments.pauseSegment({ segmentId });
            if (status === "ARCHIVED") await t.service.segments.archiveSegment({ segmentId });
            return segmentId;
          })()
        : await segmentIn(t.service, op.kind, status, name);
    if (expected === OK) {
      await op.run(t.service, id, name);
    } else {
      const error = await failure(op.run(t.service, id, name));
      expect(error.code, error.details).toBe(expected);
      if (expected === FP) expect(error.details).toMatch(new RegExp(`${status}|ARCHIVED`));
    }
  });

  it("names the current status and the allowed operations when refusing a transition", async () => {
    const id = await segmentIn(t.service, "STATIC", "PAUSED", "refusal words");
    const error = await failure(t.service.segments.pauseSegment({ segmentId: id }));
    expect(error.details).toBe("PauseSegment is not allowed: the segment is PAUSED; allowed from PAUSED: ResumeSegment, ArchiveSegment");
    const deleting = await failure(t.service.segments.deleteSegment({ segmentId: id }));
    expect(deleting.details).toContain("archive it instead");
  });

  it("validates update masks and definitions", async () => {
    const id = await segmentIn(t.service, "DYNAMIC", "DRAFT", "mask rules");
    const cases: [Parameters<typeof t.service.segments.updateSegment>[0], code, string][] = [
      [{ segmentId: id, segment: { name: "x" } }, code.INVALID_ARGUMENT, "update_mask: must name at least one"],
      [{ segmentId: id, segment: { name: "x" }, updateMask: { paths: ["status"] } }, code.INVALID_ARGUMENT, 'unknown path "status"'],
      [
        { segmentId: id, segment: { name: " " }, updateMask: { paths: ["name"] } },
        code.INVALID_ARGUMENT,
        "segment.name: must not be empty",
      ],
      [
        { segmentId: id, segment: { type: SegmentType.STATIC }, updateMask: { paths: ["type"] } },
        code.INVALID_ARGUMENT,
        "query: only DYNAMIC segments have a query",
      ],
      [
        { segmentId: id, segment: { id: "0190b6a0-0000-7000-8000-000000000000" }, updateMask: { paths: ["name"] } },
        code.INVALID_ARGUMENT,
        "segment.id",
      ],
    ];
    for (const [request, expected, message] of cases) {
      const error = await failure(t.service.segments.updateSegment(request));
      expect(error.code, message).toBe(expected);
      expect(error.details).toContain(message);
    }
    // Changing type away from DYNAMIC works when the same call clears the query.
    const changed = await t.service.segments.updateSegment({
      segmentId: id,
      segment: { type: SegmentType.STATIC },
      updateMask: { paths: ["type", "query"] },
    });
    expect(changed.segment?.type).toBe(SegmentType.STATIC);
    expect(changed.segment?.query).toBeUndefined();
    const everyone = (await t.service.segments.createSegment({ name: "everyone rules", type: SegmentType.EVERYONE })).segment?.id ?? "";
    const noQuery = await failure(
      t.service.segments.updateSegment({ segmentId: everyone, segment: { query: sql }, updateMask: { paths: ["query"] } }),
    );
    expect(noQuery.code).toBe(FP);
    const noMembers = await failure(t.service.segments.addMembers({ segmentId: everyone, userIds: ["a"] }));
    expect(noMembers.code).toBe(FP);
  });

  it("refuses to clear the query of an ACTIVE DYNAMIC segment", async () => {
    const id = await segmentIn(t.service, "DYNAMIC", "ACTIVE", "live query");
    const error = await failure(t.service.segments.updateSegment({ segmentId: id, segment: {}, updateMask: { paths: ["query"] } }));
    expect(error.code).toBe(code.FAILED_PRECONDITION);
    expect(error.details).toContain("pause it first");
  });

  it("refuses to resume a DYNAMIC segment whose query was cleared while paused", async () => {
    const id = await segmentIn(t.service, "DYNAMIC", "PAUSED", "cleared query");
    await t.service.segments.updateSegment({ segmentId: id, segment: {}, updateMask: { paths: ["query"] } });
    const error = await failure(t.service.segments.resumeSegment({ segmentId: id }));
    expect(error.code).toBe(FP);
    expect(error.details).toContain("needs a query");
  });

  it("frees a name on archive and refuses to restore into a taken name", async () => {
    const first = await segmentIn(t.service, "STATIC", "ARCHIVED", "Reused name");
    await t.service.segments.createSegment({ name: "reused NAME", type: SegmentType.STATIC });
    const error = await failure(t.service.segments.restoreSegment({ segmentId: first }));
    expect(error.code).toBe(code.ALREADY_EXISTS);
    const still = await t.service.segments.getSegment({ segmentId: first });
    expect(still.segment?.status).toBe(SegmentStatus.ARCHIVED);
  });

  it("keeps 100,000 members through archive and restore, and serves PAUSED but not ARCHIVED", async () => {
    const { segment } = await t.service.segments.createSegment({ name: "Kept members", type: SegmentType.STATIC });
    const id = segment?.id ?? "";
    const userIds = Array.from({ length: 100_000 }, (_, i) => `kept_${i}`);
    await t.service.segments.addMembers({ segmentId: id, userIds });
    await t.service.segments.activateSegment({ segmentId: id });
    await t.service.segments.pauseSegment({ segmentId: id });
    expect((await t.service.membership.checkMembership({ userId: "kept_5", segmentIds: [id] })).results[0]?.member).toBe(true);
    await t.service.segments.archiveSegment({ segmentId: id });
    expect((await failure(t.service.membership.batchCheckMembership({ segmentId: id, userIds: ["kept_5"] }))).code).toBe(FP);
    const listed = await t.service.segments.listSegments({ nameContains: "Kept members" });
    expect(listed.segments).toHaveLength(0);
    const shown = await t.service.segments.listSegments({ nameContains: "Kept members", showArchived: true });
    expect(shown.segments.map((s) => s.id)).toEqual([id]);

    const restored = await t.service.segments.restoreSegment({ segmentId: id });
    expect(restored.segment).toMatchObject({ status: SegmentStatus.PAUSED, memberCount: 100_000n, version: 1n });
    const answer = await t.service.membership.batchCheckMembership({ segmentId: id, userIds });
    expect(answer.members.filter(Boolean)).toHaveLength(100_000);
    const stranger = await t.service.membership.checkMembership({ userId: "stranger", segmentIds: [id] });
    expect(stranger.results[0]?.member).toBe(false);
  });

  it("lists 2,500 segments exactly once, in the same order twice, while more are created", async () => {
    const before = new Set<string>();
    for (let i = 0; i < 2_500; i += 50) {
      const batch = await Promise.all(
        Array.from({ length: 50 }, (_, j) => t.service.segments.createSegment({ name: `listing ${i + j}`, type: SegmentType.STATIC })),
      );
      for (const created of batch) before.add(created.segment?.id ?? "");
    }
    const listAll = async () => {
      const ids: string[] = [];
      let pageToken = "";
      do {
        const page = await t.service.segments.listSegments({ pageSize: 1_000, pageToken, nameContains: "listing " });
        ids.push(...page.segments.map((s) => s.id));
        pageToken = page.nextPageToken;
      } while (pageToken !== "");
      return ids;
    };
    let creating = true;
    const creator = (async () => {
      for (let n = 0; creating; n++) await t.service.segments.createSegment({ name: `listing late ${n}`, type: SegmentType.STATIC });
    })();
    const first = await listAll();
    const second = await listAll();
    creating = false;
    await creator;
    for (const ids of [first, second]) {
      expect(new Set(ids).size).toBe(ids.length);
      expect(ids.filter((id) => before.has(id))).toHaveLength(2_500);
    }
    const stable = (ids: string[]) => ids.filter((id) => before.has(id));
    expect(stable(second)).toEqual(stable(first));
  });

  it("records every create, update and transition in the audit trail, newest first", async () => {
    const as = new Metadata();
    as.set("x-caller", "alice@example.com");
    const { segment } = await t.service.segments.createSegment({ name: "Audited", type: SegmentType.STATIC }, { metadata: as });
    const id = segment?.id ?? "";
    await t.service.segments.updateSegment({
      segmentId: id,
      segment: { name: "Audited", description: "now described" },
      updateMask: { paths: ["description", "name"] },
    });
    await t.service.segments.activateSegment({ segmentId: id });
    await t.service.segments.archiveSegment({ segmentId: id });
    await t.service.segments.restoreSegment({ segmentId: id });
    const first = await t.service.segments.listSegmentHistory({ segmentId: id, pageSize: 3 });
    const rest = await t.service.segments.listSegmentHistory({ segmentId: id, pageSize: 3, pageToken: first.nextPageToken });
    expect(rest.nextPageToken).toBe("");
    const entries = [...first.entries, ...rest.entries];
    expect(entries.map((e) => [SegmentHistoryAction[e.action], SegmentStatus[e.fromStatus], SegmentStatus[e.toStatus]])).toEqual([
      ["RESTORE", "ARCHIVED", "PAUSED"],
      ["ARCHIVE", "ACTIVE", "ARCHIVED"],
      ["ACTIVATE", "DRAFT", "ACTIVE"],
      ["UPDATE", "DRAFT", "DRAFT"],
      ["CREATE", "UNSPECIFIED", "DRAFT"],
    ]);
    // The mask named name too, but only the description changed.
    expect(entries[3]?.changedFields).toEqual(["description"]);
    expect(entries[4]?.changedFields).toEqual(["name", "type"]);
    // No token configured: the caller is "unauthenticated"; x-caller is only who it acted for.
    expect(entries[4]).toMatchObject({ caller: "unauthenticated", onBehalfOf: "alice@example.com" });
    expect(entries[0]).toMatchObject({ caller: "unauthenticated", onBehalfOf: "" });
  });
});
