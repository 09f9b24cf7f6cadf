/**
 * Replica loading (issue 10): GetSegmentBitmap and ResolveUserIds give a client-side replica the
 * bitmap and uids it answers from — on both stores.
 */
import { status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import type { GetSegmentBitmapResponse } from "../../src/gen/segments/v1/membership_service_pb.js";
import { SegmentType } from "../../src/gen/segments/v1/segment_pb.js";
import { ImportMode } from "../../src/gen/segments/v1/segment_service_pb.js";
import { RoaringBitmap32 } from "../../src/index/roaring.js";
import { useService } from "../support/service.js";
import { failure } from "../support/status.js";
import { STORES } from "../support/stores.js";

const ids = (prefix: string, from: number, to: number) => Array.from({ length: to - from }, (_, i) => `${prefix}${from + i}`);

describe.each(STORES)("GetSegmentBitmap and ResolveUserIds on $name", (kind) => {
  const t = useService(kind);

  const active = async (name: string, type = SegmentType.STATIC) => {
    const id = (await t.service.segments.createSegment({ name, type })).segment?.id ?? "";
    await t.service.segments.activateSegment({ segmentId: id });
    return id;
  };
  const add = async (id: string, userIds: string[]) => {
    await t.service.segments.addMembers({ segmentId: id, userIds });
  };

  it("refuses DRAFT and ARCHIVED segments; an EVERYONE segment is everyone with an empty bitmap", async () => {
    const draft = (await t.service.segments.createSegment({ name: "Draft bitmap", type: SegmentType.STATIC })).segment?.id ?? "";
    const archived = await active("Archived bitmap");
    await t.service.segments.archiveSegment({ segmentId: archived });
    const everyone = await active("Everyone bitmap", SegmentType.EVERYONE);
    expect((await failure(collect(t.service.membership.getSegmentBitmap({ segmentId: draft })))).code).toBe(status.FAILED_PRECONDITION);
    expect((await failure(collect(t.service.membership.getSegmentBitmap({ segmentId: archived })))).code).toBe(status.FAILED_PRECONDITION);
    const all = await collect(t.service.membership.getSegmentBitmap({ segmentId: everyone }));
    expect(all).toHaveLength(1);
    expect(all[0]).toMatchObject({ everyone: true, complete: true, version: 0n });
    expect(all[0]?.bitmap).toHaveLength(0);
  });

  it("GetSegmentBitmap of a 300,000-member segment reassembles to its exact uids; ResolveUserIds agrees with the hot path", async () => {
    const s = await active("Bitmap");
    const members = ids("bm-", 0, 300_000);
    const outsiders = ids("out-", 0, 1_000);
    await t.service.segments.importMembers(
      [0, 100_000, 200_000].map((from) => ({ segmentId: s, mode: ImportMode.ADD, userIds: members.slice(from, from + 100_000) })),
    );
    await add(await active("Outsiders"), outsiders);

    const messages = await collect(t.service.membership.getSegmentBitmap({ segmentId: s }));
    expect(messages.map((m) => m.complete)).toEqual(messages.map((_, i) => i === messages.length - 1));
    expect(new Set(messages.map((m) => m.version))).toEqual(new Set([1n]));
    expect(messages.every((m) => !m.everyone && !m.stale && m.versionTime !== undefined)).toBe(true);
    const bitmap = RoaringBitmap32.deserialize(Buffer.concat(messages.map((m) => m.bitmap)), true);
    expect(bitmap.size).toBe(300_000);
    const uids: number[] = [];
    for (let i = 0; i < members.length; i += 100_000) {
      uids.push(...(await t.service.membership.resolveUserIds({ userIds: members.slice(i, i + 100_000) })).uids.map(Number));
    }
    expect(bitmap.isEqual(new RoaringBitmap32(uids.sort((x, y) => x - y)))).toBe(true);

    // Sampled users: bitmap.has(uid) is what the hot path answers; unknown users have uid −1.
    const sample = [...members.filter((_, i) => i % 600 === 0), ...outsiders.slice(0, 500), "never-seen-1", "never-seen-2"];
    const resolved = (await t.service.membership.resolveUserIds({ userIds: sample })).uids.map(Number);
    expect(resolved.slice(-2)).toEqual([-1, -1]);
    const answers = (await t.service.membership.batchCheckMembership({ segmentId: s, userIds: sample })).members;
    expect(resolved.map((uid) => uid >= 0 && bitmap.has(uid))).toEqual(answers);
    for (const i of [0, 10, sample.length - 3, sample.length - 1]) {
      const [check] = (await t.service.membership.checkMembership({ userId: sample[i] as string, segmentIds: [s] })).results;
      expect(check?.member).toBe(answers[i]);
    }
    for (const bad of [[], [""], ["x\u0000"], ["y".repeat(257)]]) {
      expect((await failure(t.service.membership.resolveUserIds({ userIds: bad }))).code).toBe(status.INVALID_ARGUMENT);
    }
  });
});

describe.each(STORES)("GetSegmentBitmap under a small MAX_MESSAGE_BYTES on $name", (kind) => {
  const t = useService(kind, { MAX_MESSAGE_BYTES: "4096" });

  it("splits the bitmap into chunks below the limit that reassemble to the exact uids", async () => {
    const id = (await t.service.segments.createSegment({ name: "Chunked", type: SegmentType.STATIC })).segment?.id ?? "";
    await t.service.segments.activateSegment({ segmentId: id });
    const members = ids("chunk-", 0, 20_000);
    const batches = Array.from({ length: 100 }, (_, i) => members.slice(i * 200, (i + 1) * 200));
    await t.service.segments.importMembers(batches.map((userIds) => ({ segmentId: id, mode: ImportMode.ADD, userIds })));
    const messages = await collect(t.service.membership.getSegmentBitmap({ segmentId: id }));
    expect(messages.length).toBeGreaterThan(1);
    expect(messages.every((m) => m.bitmap.byteLength < 4096)).toBe(true);
    expect(messages.map((m) => m.complete)).toEqual(messages.map((_, i) => i === messages.length - 1));
    const bitmap = RoaringBitmap32.deserialize(Buffer.concat(messages.map((m) => m.bitmap)), true);
    const uids: number[] = [];
    for (const userIds of batches) uids.push(...(await t.service.membership.resolveUserIds({ userIds })).uids.map(Number));
    expect(bitmap.isEqual(new RoaringBitmap32(uids.sort((x, y) => x - y)))).toBe(true);
  });
});

async function collect(stream: AsyncIterable<GetSegmentBitmapResponse>): Promise<GetSegmentBitmapResponse[]> {
  const out: GetSegmentBitmapResponse[] = [];
  for await (const message of stream) out.push(message);
  return out;
}
