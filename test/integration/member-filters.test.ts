/**
 * Batch checks of a small segment go through a filter of its members once one is made
 * (src/service/member-filters.ts). Through the real server, on both stores: the answers are
 * exactly the members before the filter exists, with it, after changes it catches up with in
 * place (new users among them) and after one that makes it start over.
 */
import { describe, expect, it } from "vitest";
import { SegmentType } from "../../src/gen/segments/v1/segment_pb.js";
import { useService } from "../support/service.js";
import { STORES } from "../support/stores.js";

const USERS = 40_000;
const ids = (prefix: string, from: number, to: number) => Array.from({ length: to - from }, (_, i) => `${prefix}${from + i}`);

describe.each(STORES)("batch checks through a member filter on $name", (kind) => {
  const t = useService(kind);

  const createActive = async (name: string) => {
    const segmentId = (await t.service.segments.createSegment({ name, type: SegmentType.STATIC })).segment?.id ?? "";
    await t.service.segments.activateSegment({ segmentId });
    return segmentId;
  };
  const filterBytes = async () => {
    const text = await (await fetch(`http://127.0.0.1:${t.service.app.httpPort}/metrics`)).text();
    return Number(/^segments_member_filter_bytes (\d+)$/m.exec(text)?.[1] ?? Number.NaN);
  };
  /** Asks about every user, some never seen, and a few ids twice; each answer must be membership exactly. */
  const expectExactly = async (segmentId: string, members: ReadonlySet<string>) => {
    const asked = [...ids("user_", 0, USERS), ...ids("nobody_", 0, 50), ...ids("fresh_", 0, 20), "user_0", "user_40"];
    const answer = await t.service.membership.batchCheckMembership({ segmentId, userIds: asked });
    const wrong = asked.filter((id, i) => answer.members[i] !== members.has(id));
    expect(wrong).toEqual([]);
  };
  /** Batch checks until the filters' bytes pass `above` (a build finished), then once more. */
  const untilFilterGrows = async (segmentId: string, members: ReadonlySet<string>, above: number) => {
    for (let round = 0; round < 200 && (await filterBytes()) <= above; round++) {
      await expectExactly(segmentId, members);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(await filterBytes()).toBeGreaterThan(above);
    await expectExactly(segmentId, members);
  };

  it("answers exactly the members as its filter is made, caught up and made again", async () => {
    const everyone = await createActive("All users");
    await t.service.segments.addMembers({ segmentId: everyone, userIds: ids("user_", 0, USERS) });
    const small = await createActive("Every 40th user");
    const members = new Set(ids("user_", 0, USERS).filter((_, i) => i % 40 === 0));
    await t.service.segments.addMembers({ segmentId: small, userIds: [...members] });

    expect(await filterBytes()).toBe(0);
    await untilFilterGrows(small, members, 0);
    const made = await filterBytes();

    // A few members in, new users among them: the call after the change takes them into the filter.
    const joined = [...ids("fresh_", 0, 10), "user_1", "user_2", "user_39999"];
    await t.service.segments.addMembers({ segmentId: small, userIds: joined });
    for (const id of joined) members.add(id);
    await expectExactly(small, members);
    // Members leaving need nothing of the filter: the bitmap says no.
    const left = ["user_0", "user_40", "user_80", "fresh_3"];
    await t.service.segments.removeMembers({ segmentId: small, userIds: left });
    for (const id of left) members.delete(id);
    await expectExactly(small, members);
    expect(await filterBytes()).toBe(made);

    // Too many new members to hash in place: answered without a filter while a larger one is made.
    const many = ids("user_", 10_000, 16_000);
    await t.service.segments.addMembers({ segmentId: small, userIds: many });
    for (const id of many) members.add(id);
    await expectExactly(small, members);
    await untilFilterGrows(small, members, made);
  });
});
