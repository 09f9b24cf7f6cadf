import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { BatchCheckMembershipResponseSchema, CheckMembershipResponseSchema } from "../../src/gen/segments/v1/membership_service_pb.js";
import { encodeBatchCheckResponse, encodeCheckResponse } from "../../src/grpc/check-encoding.js";
import type { BatchAnswer, MembershipAnswer } from "../../src/service/membership-service.js";

/** What protobuf-es writes for the same answers: the bytes the hand encoder must match. */
function reference(answers: MembershipAnswer[]): Uint8Array {
  const results = answers.map((a) => ({
    segmentId: a.segmentId,
    member: a.member,
    version: BigInt(a.version),
    versionTime: a.versionAt === null ? undefined : timestampFromDate(a.versionAt),
    stale: a.stale,
  }));
  return toBinary(CheckMembershipResponseSchema, create(CheckMembershipResponseSchema, { results }));
}

const answer = (overrides: Partial<MembershipAnswer>): MembershipAnswer => ({
  segmentId: "0b9e2f6e-8f0c-4b8e-9d55-2f7f3c1f2a10",
  member: true,
  version: 7,
  versionAt: new Date(1_764_000_000_123),
  stale: false,
  ...overrides,
});

describe("CheckMembershipResponse encoded by hand", () => {
  it.each([
    ["a member with a version and time", [answer({})]],
    ["not a member, stale", [answer({ member: false, stale: true })]],
    ["EVERYONE: version 0, no time", [answer({ version: 0, versionAt: null })]],
    ["a time on a whole second (no nanos)", [answer({ versionAt: new Date(1_764_000_000_000) })]],
    ["the epoch (an empty Timestamp)", [answer({ versionAt: new Date(0) })]],
    ["versions needing long varints", [answer({ version: 2 ** 31 }), answer({ version: Number.MAX_SAFE_INTEGER })]],
    ["an empty and a non-ASCII segment id", [answer({ segmentId: "" }), answer({ segmentId: "ü€😀".repeat(40) })]],
    ["no results", []],
    ["a time before 1970 (written by protobuf-es)", [answer({ versionAt: new Date(-1_500) })]],
  ])("%s: the bytes protobuf-es writes", (_, answers) => {
    expect(new Uint8Array(encodeCheckResponse(answers).bytes)).toEqual(reference(answers));
  });

  it("matches for many results of every shape", () => {
    const answers = Array.from({ length: 100 }, (_, i) =>
      answer({
        segmentId: `s-${i}`,
        member: i % 2 === 0,
        stale: i % 3 === 0,
        version: i * 1_000_003,
        versionAt: i % 5 === 0 ? null : new Date(i * 987_654_321),
      }),
    );
    expect(new Uint8Array(encodeCheckResponse(answers).bytes)).toEqual(reference(answers));
  });
});

/** protobuf-es's bytes for a batch answer. */
function batchReference(answer: BatchAnswer): Uint8Array {
  const message = create(BatchCheckMembershipResponseSchema, {
    members: Array.from(answer.members, (flag) => flag === 1),
    version: BigInt(answer.version),
    versionTime: answer.versionAt === null ? undefined : timestampFromDate(answer.versionAt),
    stale: answer.stale,
  });
  return toBinary(BatchCheckMembershipResponseSchema, message);
}

const batch = (members: number[], overrides: Partial<BatchAnswer> = {}): BatchAnswer => ({
  members: Uint8Array.from(members),
  version: 12,
  versionAt: new Date(1_764_000_000_456),
  stale: false,
  ...overrides,
});

describe("BatchCheckMembershipResponse encoded by hand", () => {
  it.each([
    ["members and not", batch([1, 0, 0, 1, 1])],
    ["no ids at all", batch([])],
    ["nobody a member (the packed field still lists every flag)", batch([0, 0, 0])],
    ["EVERYONE: version 0, no time", batch([1, 1], { version: 0, versionAt: null })],
    ["stale, a whole-second time", batch([0, 1], { stale: true, versionAt: new Date(1_764_000_000_000) })],
    ["the epoch", batch([1], { versionAt: new Date(0) })],
    ["a long varint version", batch([1, 0], { version: Number.MAX_SAFE_INTEGER })],
    ["a time before 1970 (written by protobuf-es)", batch([1], { versionAt: new Date(-1_500) })],
  ])("%s: the bytes protobuf-es writes", (_, answer) => {
    expect(new Uint8Array(encodeBatchCheckResponse(answer).bytes)).toEqual(batchReference(answer));
  });

  it("matches for flag counts across varint length boundaries", () => {
    for (const count of [127, 128, 16_383, 16_384, 100_000]) {
      const answer = batch(Array.from({ length: count }, (_, i) => (i % 7 === 3 ? 1 : 0)));
      expect(new Uint8Array(encodeBatchCheckResponse(answer).bytes)).toEqual(batchReference(answer));
    }
  });
});
