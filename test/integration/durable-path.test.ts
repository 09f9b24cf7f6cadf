/**
 * The walking skeleton's durable path, end to end over gRPC, on both stores: what was
 * acknowledged before a restart is exactly what is served after it.
 */
import { describe, expect, it } from "vitest";
import { SegmentStatus, SegmentType } from "../../src/gen/segments/v1/segment_pb.js";
import { startService, useService } from "../support/service.js";
import { STORES } from "../support/stores.js";

const ids = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `user_${from + i}`);

describe.each(STORES)("durable membership on $name", (kind) => {
  const t = useService(kind);

  it("keeps exactly the acknowledged members across a restart", async () => {
    const { segment } = await t.service.segments.createSegment({ name: "Beta testers", type: SegmentType.STATIC });
    const id = segment?.id ?? "";
    expect(segment?.status).toBe(SegmentStatus.DRAFT);
    const activated = await t.service.segments.activateSegment({ segmentId: id });
    expect(activated.segment?.status).toBe(SegmentStatus.ACTIVE);

    const everyone = ids(0, 100_000);
    const added = await t.service.segments.addMembers({ segmentId: id, userIds: everyone });
    expect(added).toMatchObject({ added: 100_000n, unchanged: 0n, version: 1n, memberCount: 100_000n });

    // Every 100th user leaves: 1,000 removals.
    const leaving = everyone.filter((_, i) => i % 100 === 0);
    const removed = await t.service.segments.removeMembers({ segmentId: id, userIds: leaving });
    expect(removed).toMatchObject({ removed: 1_000n, unchanged: 0n, version: 2n, memberCount: 99_000n });

    await t.service.stop();
    t.service = await startService(t.store);

    const after = await t.service.segments.getSegment({ segmentId: id });
    expect(after.segment).toMatchObject({ status: SegmentStatus.ACTIVE, memberCount: 99_000n, version: 2n });
    const answer = await t.service.membership.batchCheckMembership({ segmentId: id, userIds: everyone });
    expect(answer.version).toBe(2n);
    const members = everyone.filter((_, i) => answer.members[i]);
    expect(members).toHaveLength(99_000);
    expect(members).toEqual(everyone.filter((_, i) => i % 100 !== 0));
  });

  it("answers membership per segment and treats repeats as no-ops", async () => {
    const { segment } = await t.service.segments.createSegment({ name: "VIPs", type: SegmentType.STATIC });
    const id = segment?.id ?? "";
    await t.service.segments.activateSegment({ segmentId: id });
    await t.service.segments.addMembers({ segmentId: id, userIds: ["alice", "bob", "alice"] });
    const again = await t.service.segments.addMembers({ segmentId: id, userIds: ["alice", "carol"] });
    expect(again).toMatchObject({ added: 1n, unchanged: 1n, version: 2n, memberCount: 3n });
    const noop = await t.service.segments.addMembers({ segmentId: id, userIds: ["bob"] });
    expect(noop).toMatchObject({ added: 0n, unchanged: 1n, version: 2n, memberCount: 3n });
    const gone = await t.service.segments.removeMembers({ segmentId: id, userIds: ["bob", "nobody"] });
    expect(gone).toMatchObject({ removed: 1n, unchanged: 1n, version: 3n, memberCount: 2n });

    const check = async (userId: string) => (await t.service.membership.checkMembership({ userId, segmentIds: [id] })).results[0]?.member;
    expect(await check("alice")).toBe(true);
    expect(await check("bob")).toBe(false);
    expect(await check("carol")).toBe(true);
    expect(await check("never-seen")).toBe(false);
  });

  it("counts every known user as a member of EVERYONE, and any valid id", async () => {
    const { segment } = await t.service.segments.createSegment({ name: "All users", type: SegmentType.EVERYONE });
    const id = segment?.id ?? "";
    await t.service.segments.activateSegment({ segmentId: id });
    const result = await t.service.membership.checkMembership({ userId: "someone-we-never-saw", segmentIds: [id] });
    expect(result.results[0]?.member).toBe(true);
    const got = await t.service.segments.getSegment({ segmentId: id });
    // 100,000 from the first test plus alice, bob, carol.
    expect(got.segment?.memberCount).toBe(100_003n);
  });

  it("lists segments in pages, in creation order", async () => {
    const created: string[] = [];
    for (let i = 0; i < 7; i++) {
      const { segment } = await t.service.segments.createSegment({ name: `Page test ${i}`, type: SegmentType.STATIC });
      created.push(segment?.id ?? "");
    }
    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await t.service.segments.listSegments({ pageSize: 3, pageToken, nameContains: "page test" });
      expect(page.segments.length).toBeLessThanOrEqual(3);
      seen.push(...page.segments.map((s) => s.id));
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    expect(seen).toEqual(created);
  });
});
