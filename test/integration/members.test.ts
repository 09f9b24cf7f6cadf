/**
 * Member management beyond add/remove: streamed imports (atomic, cancellable), subtraction,
 * paging members out, diffs between versions and rollback — on both stores.
 */

import type { MessageInitShape } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { SegmentType } from "../../src/gen/segments/v1/segment_pb.js";
import type { ImportMembersRequestSchema } from "../../src/gen/segments/v1/segment_service_pb.js";
import { ImportMode } from "../../src/gen/segments/v1/segment_service_pb.js";
import { useService } from "../support/service.js";
import { failure } from "../support/status.js";
import { STORES } from "../support/stores.js";

type ImportMessage = MessageInitShape<typeof ImportMembersRequestSchema>;
const ids = (prefix: string, from: number, to: number) => Array.from({ length: to - from }, (_, i) => `${prefix}${from + i}`);

describe.each(STORES)("member management on $name", (kind) => {
  const t = useService(kind);

  const staticSegment = async (name: string) =>
    (await t.service.segments.createSegment({ name, type: SegmentType.STATIC })).segment?.id ?? "";
  const members = async (id: string) => {
    const out: string[] = [];
    let pageToken = "";
    do {
      const page = await t.service.segments.listMembers({ segmentId: id, pageSize: 10_000, pageToken });
      out.push(...page.userIds);
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    return out.sort();
  };

  it("imports ids and text in one version, reporting invalid lines", async () => {
    const id = await staticSegment("Imported");
    await t.service.segments.addMembers({ segmentId: id, userIds: ["keep", "old"] });
    const text = new TextEncoder().encode(`a1\na2\r\n\n   \nbad\nx\n${"y".repeat(300)}\na3`);
    const messages: ImportMessage[] = [
      { segmentId: id, mode: ImportMode.ADD, userIds: ["keep", "b1", ""] },
      { text: text.subarray(0, 5) },
      { text: text.subarray(5) },
    ];
    const result = await t.service.segments.importMembers(messages);
    expect(result).toMatchObject({ added: 6n, removed: 0n, unchanged: 1n, invalid: 2n, version: 2n, memberCount: 8n });
    expect(result.invalidLines.map((l) => [Number(l.line), l.reason])).toEqual([
      [3, "empty id"],
      [10, "longer than 256 bytes"],
    ]);
    expect(await members(id)).toEqual(["a1", "a2", "a3", "b1", "bad", "keep", "old", "x"]);

    const replaced = await t.service.segments.importMembers([{ segmentId: id, mode: ImportMode.REPLACE, userIds: ["keep", "new"] }]);
    expect(replaced).toMatchObject({ added: 1n, removed: 7n, unchanged: 1n, version: 3n, memberCount: 2n });
    const removed = await t.service.segments.importMembers([{ segmentId: id, mode: ImportMode.REMOVE, userIds: ["keep", "ghost"] }]);
    expect(removed).toMatchObject({ removed: 1n, unchanged: 1n, version: 4n, memberCount: 1n });
    const unspecified = await failure(t.service.segments.importMembers([{ segmentId: id, userIds: ["x"] }]));
    expect(unspecified.code).toBe(status.INVALID_ARGUMENT);
  });

  it("gives an id named several times in one AddMembers one uid, beside known ids and in a removal", async () => {
    const id = await staticSegment("Repeated new ids");
    await t.service.segments.addMembers({ segmentId: id, userIds: ["known_1", "known_2"] });
    const fresh = ids("rep_", 0, 3_000);
    // Every new id three times, spread over the request, between known ones.
    const request = [...fresh, "known_1", ...fresh.slice().reverse(), "known_2", ...fresh];
    const result = await t.service.segments.addMembers({ segmentId: id, userIds: request });
    expect(result).toMatchObject({ added: 3_000n, unchanged: 2n, memberCount: 3_002n });
    const uids = (await t.service.membership.resolveUserIds({ userIds: fresh })).uids;
    expect(new Set(uids).size).toBe(3_000);
    expect(uids.every((uid) => uid >= 0n)).toBe(true);
    expect(await members(id)).toEqual([...fresh, "known_1", "known_2"].sort());
    // Removing ids that are not users, repeated, counts each once and changes nothing.
    const removal = await t.service.segments.removeMembers({ segmentId: id, userIds: ["ghost", "known_1", "ghost", "phantom"] });
    expect(removal).toMatchObject({ removed: 1n, unchanged: 2n, memberCount: 3_001n });
  });

  it("makes a 1,000,000-id import visible at once, and leaves the segment untouched when one is cancelled halfway", async () => {
    const id = await staticSegment("Big import");
    const chunk = 50_000;
    async function* stream(total: number, prefix: string, onHalf?: () => void): AsyncGenerator<ImportMessage> {
      for (let from = 0; from < total; from += chunk) {
        if (from === total / 2) onHalf?.();
        yield { ...(from === 0 ? { segmentId: id, mode: ImportMode.ADD } : {}), userIds: ids(prefix, from, from + chunk) };
      }
    }
    const done = await t.service.segments.importMembers(stream(1_000_000, "big_"));
    expect(done).toMatchObject({ added: 1_000_000n, version: 1n, memberCount: 1_000_000n });

    const abort = new AbortController();
    let half = false;
    const cancelled = await failure(
      t.service.segments.importMembers(
        stream(1_000_000, "cancelled_", () => {
          half = true;
          abort.abort();
        }),
        { signal: abort.signal },
      ),
    );
    expect(half).toBe(true);
    expect(cancelled.code).toBe(status.CANCELLED);
    // This waits for the segment's lock, so it runs after the cancelled import has finished.
    const after = await t.service.segments.addMembers({ segmentId: id, userIds: ["after_cancel"] });
    expect(after).toMatchObject({ added: 1n, version: 2n, memberCount: 1_000_001n });
    await t.service.segments.activateSegment({ segmentId: id });
    const probe = await t.service.membership.batchCheckMembership({ segmentId: id, userIds: ids("cancelled_", 0, 100_000) });
    expect(probe.members.some(Boolean)).toBe(false);
  });

  it("subtracts a segment, EVERYONE empties, DRAFT and itself are refused", async () => {
    const a = await staticSegment("Trial users");
    const b = await staticSegment("Converted");
    await t.service.segments.addMembers({ segmentId: a, userIds: ids("t", 0, 100) });
    await t.service.segments.addMembers({ segmentId: b, userIds: ids("t", 50, 150) });
    expect((await failure(t.service.segments.subtractSegment({ segmentId: a, subtractSegmentId: b }))).code).toBe(
      status.FAILED_PRECONDITION,
    );
    await t.service.segments.activateSegment({ segmentId: b });
    const result = await t.service.segments.subtractSegment({ segmentId: a, subtractSegmentId: b });
    expect(result).toMatchObject({ removed: 50n, version: 2n, memberCount: 50n, subtractedVersion: 1n });
    expect(await members(a)).toEqual(ids("t", 0, 50).sort());
    expect((await failure(t.service.segments.subtractSegment({ segmentId: a, subtractSegmentId: a }))).code).toBe(status.INVALID_ARGUMENT);
    const everyone = (await t.service.segments.createSegment({ name: "Everybody", type: SegmentType.EVERYONE })).segment?.id ?? "";
    await t.service.segments.activateSegment({ segmentId: everyone });
    const emptied = await t.service.segments.subtractSegment({ segmentId: a, subtractSegmentId: everyone });
    expect(emptied).toMatchObject({ removed: 50n, version: 3n, memberCount: 0n });
  });

  it("pages members in a stable order, each exactly once", async () => {
    const id = await staticSegment("Paged");
    await t.service.segments.addMembers({ segmentId: id, userIds: ids("p", 0, 2_345) });
    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await t.service.segments.listMembers({ segmentId: id, pageSize: 1_000, pageToken });
      expect(page.userIds.length).toBeLessThanOrEqual(1_000);
      seen.push(...page.userIds);
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    expect(seen).toHaveLength(2_345);
    expect(new Set(seen).size).toBe(2_345);
    expect((await failure(t.service.segments.listMembers({ segmentId: id, pageToken: "nonsense" }))).code).toBe(status.INVALID_ARGUMENT);
  });

  it("diffs versions and rolls back to exactly an earlier membership", async () => {
    const id = await staticSegment("Versioned");
    const v1 = ids("v", 0, 300);
    await t.service.segments.addMembers({ segmentId: id, userIds: v1 }); // v1
    await t.service.segments.removeMembers({ segmentId: id, userIds: ids("v", 0, 100) }); // v2
    await t.service.segments.addMembers({ segmentId: id, userIds: ids("w", 0, 50) }); // v3
    const diff = await t.service.segments.diffMembership({ segmentId: id, fromVersion: 1n, toVersion: 3n, pageSize: 120 });
    expect(diff).toMatchObject({ enteredCount: 50n, leftCount: 100n, toVersion: 3n });
    const entered = [...diff.enteredUserIds];
    const left = [...diff.leftUserIds];
    let pageToken = diff.nextPageToken;
    while (pageToken !== "") {
      const page = await t.service.segments.diffMembership({ segmentId: id, fromVersion: 1n, toVersion: 3n, pageSize: 120, pageToken });
      entered.push(...page.enteredUserIds);
      left.push(...page.leftUserIds);
      pageToken = page.nextPageToken;
    }
    expect(entered.sort()).toEqual(ids("w", 0, 50).sort());
    expect(left.sort()).toEqual(ids("v", 0, 100).sort());

    const rolled = await t.service.segments.rollbackSegment({ segmentId: id, toVersion: 1n });
    expect(rolled).toMatchObject({ version: 4n, memberCount: 300n, added: 100n, removed: 50n });
    expect(await members(id)).toEqual([...v1].sort());
    const toEmpty = await t.service.segments.rollbackSegment({ segmentId: id, toVersion: 0n });
    expect(toEmpty).toMatchObject({ version: 5n, memberCount: 0n });
    expect((await failure(t.service.segments.rollbackSegment({ segmentId: id, toVersion: 9n }))).code).toBe(status.INVALID_ARGUMENT);
    expect((await failure(t.service.segments.diffMembership({ segmentId: id, fromVersion: 3n, toVersion: 2n }))).code).toBe(
      status.INVALID_ARGUMENT,
    );
  });
});
