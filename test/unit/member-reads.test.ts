import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { Segment } from "../../src/model.js";
import { MemberReads } from "../../src/service/member-reads.js";
import { newSegment } from "../../src/service/segment-service.js";
import { SegmentState } from "../../src/service/segment-state.js";
import type { SegmentStore } from "../../src/store/segment-store.js";

describe("ListMembers on EVERYONE", () => {
  it("looks at no more than 2^20 uids per page, so a wide gap gives short pages that still reach every user", () => {
    const state = new SegmentState(randomBytes(32));
    const everyone: Segment = newSegment({ name: "All", description: "", type: "EVERYONE", query: null, schedule: null }, new Date(0));
    state.segments.set(everyone.id, everyone);
    state.directory.add(0, "first");
    state.directory.add(3_000_000, "after-the-gap");
    // ListMembers never touches the store; only DiffMembership reads history.
    const reads = new MemberReads(state, {} as SegmentStore);

    const pages: string[][] = [];
    let token = "";
    do {
      const page = reads.listMembers(everyone.id, 10, token);
      pages.push(page.userIds);
      token = page.nextPageToken;
    } while (token !== "" && pages.length < 10);
    expect(pages).toEqual([["first"], [], ["after-the-gap"]]);
  });
});
