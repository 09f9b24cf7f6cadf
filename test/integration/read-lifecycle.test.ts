/**
 * Every (status × MembershipService RPC) pair answers as the seed's lifecycle says: DRAFT is "not
 * yet available", PAUSED "continues to function" for existing consumers but cannot be newly
 * selected, ARCHIVED "cannot be selected". Served means the call succeeds and reads the segment;
 * refused means FAILED_PRECONDITION naming the status. On both stores.
 */
import { status } from "@grpc/grpc-js";
import { beforeAll, describe, expect, it } from "vitest";
import { SegmentStatus, SegmentType } from "../../src/gen/segments/v1/segment_pb.js";
import { RoaringBitmap32 } from "../../src/index/roaring.js";
import { type TestService, useService } from "../support/service.js";
import { failure } from "../support/status.js";
import { STORES } from "../support/stores.js";

const STATUSES = ["DRAFT", "ACTIVE", "PAUSED", "ARCHIVED"] as const;
type Status = (typeof STATUSES)[number];
const MEMBER = "lifecycle_member";

/** Each RPC against one segment: resolves to what it observed about the member, or rejects. */
const RPCS: Record<string, (s: TestService, id: string) => Promise<unknown>> = {
  CheckMembership: async (s, id) => (await s.membership.checkMembership({ userId: MEMBER, segmentIds: [id] })).results[0]?.member,
  BatchCheckMembership: async (s, id) => (await s.membership.batchCheckMembership({ segmentId: id, userIds: [MEMBER] })).members[0],
  ListUserSegments: async (s, id) => (await s.membership.listUserSegments({ userId: MEMBER })).results.some((r) => r.segmentId === id),
  CountAudience: async (s, id) => (await s.membership.countAudience({ includeSegmentIds: [id] })).count === 1n,
  StreamAudience: async (s, id) => {
    const ids: string[] = [];
    for await (const m of s.membership.streamAudience({ includeSegmentIds: [id] })) ids.push(...m.userIds);
    return ids.length === 1 && ids[0] === MEMBER;
  },
  ValidateTargeting: async (s, id) => (await s.membership.validateTargeting({ segmentIds: [id] })).valid,
  GetSegmentBitmap: async (s, id) => {
    const chunks: Uint8Array[] = [];
    for await (const m of s.membership.getSegmentBitmap({ segmentId: id })) chunks.push(m.bitmap);
    const [uid] = (await s.membership.resolveUserIds({ userIds: [MEMBER] })).uids;
    return RoaringBitmap32.deserialize(Buffer.concat(chunks), true).has(Number(uid));
  },
  // The first change replayed from version 0 is the one that added the member.
  WatchMembership: async (s, id) => {
    const controller = new AbortController();
    const stream = s.membership.watchMembership({ segmentIds: [id], fromVersions: { [id]: 0n } }, { signal: controller.signal });
    for await (const m of stream) {
      controller.abort();
      return m.enteredUserIds.includes(MEMBER);
    }
    return false;
  },
};

/** What each RPC does per status. ListUserSegments never fails: it lists or omits the segment. */
const EXPECTED: Record<string, Record<Status, true | false | "refused">> = {
  CheckMembership: { DRAFT: "refused", ACTIVE: true, PAUSED: true, ARCHIVED: "refused" },
  BatchCheckMembership: { DRAFT: "refused", ACTIVE: true, PAUSED: true, ARCHIVED: "refused" },
  ListUserSegments: { DRAFT: false, ACTIVE: true, PAUSED: true, ARCHIVED: false },
  CountAudience: { DRAFT: "refused", ACTIVE: true, PAUSED: true, ARCHIVED: "refused" },
  StreamAudience: { DRAFT: "refused", ACTIVE: true, PAUSED: true, ARCHIVED: "refused" },
  // Targeting is about new selections: only ACTIVE (the others are reported, not errors).
  ValidateTargeting: { DRAFT: false, ACTIVE: true, PAUSED: false, ARCHIVED: false },
  GetSegmentBitmap: { DRAFT: "refused", ACTIVE: true, PAUSED: true, ARCHIVED: "refused" },
  WatchMembership: { DRAFT: "refused", ACTIVE: true, PAUSED: true, ARCHIVED: "refused" },
};

describe.each(STORES)("hot-path lifecycle on $name", (kind) => {
  const t = useService(kind);
  const segments = {} as Record<Status, string>;

  beforeAll(async () => {
    for (const state of STATUSES) {
      const id = (await t.service.segments.createSegment({ name: `lifecycle ${state}`, type: SegmentType.STATIC })).segment?.id ?? "";
      await t.service.segments.addMembers({ segmentId: id, userIds: [MEMBER] });
      if (state !== "DRAFT") await t.service.segments.activateSegment({ segmentId: id });
      if (state === "PAUSED") await t.service.segments.pauseSegment({ segmentId: id });
      if (state === "ARCHIVED") await t.service.segments.archiveSegment({ segmentId: id });
      segments[state] = id;
    }
    const got = await Promise.all(STATUSES.map((s) => t.service.segments.getSegment({ segmentId: segments[s] })));
    expect(got.map((g) => g.segment?.status)).toEqual(STATUSES.map((s) => SegmentStatus[s]));
  });

  const cells = Object.keys(RPCS).flatMap((rpc) => STATUSES.map((state) => ({ rpc, state, want: EXPECTED[rpc]?.[state] })));
  it.each(cells)("$rpc on a $state segment → $want", async ({ rpc, state, want }) => {
    const call = (RPCS[rpc] as (s: TestService, id: string) => Promise<unknown>)(t.service, segments[state]);
    if (want === "refused") {
      const error = await failure(call);
      expect(error.code).toBe(status.FAILED_PRECONDITION);
      expect(error.details).toContain(state);
    } else {
      expect(await call).toBe(want);
    }
  });
});
