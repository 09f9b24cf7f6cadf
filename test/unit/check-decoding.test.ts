import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { CheckMembershipRequestSchema } from "../../src/gen/segments/v1/membership_service_pb.js";
import { decodeCheckRequest } from "../../src/grpc/check-decoding.js";

const encode = (userId: string, segmentIds: string[]) =>
  Buffer.from(toBinary(CheckMembershipRequestSchema, create(CheckMembershipRequestSchema, { userId, segmentIds })));

describe("CheckMembershipRequest read from its bytes", () => {
  it.each([
    ["one user, one segment", "user_42", ["0b9e2f6e-8f0c-4b8e-9d55-2f7f3c1f2a10"]],
    ["no segments", "user_1", []],
    ["an empty user id and segment id", "", [""]],
    ["a 200-byte id (two-byte length)", "u".repeat(200), ["s".repeat(130), "t"]],
    ["control characters", "a\u0000b\u007f", ["\n"]],
  ])("%s: what protobuf-es decodes", (_, userId, segmentIds) => {
    const bytes = encode(userId, segmentIds);
    expect(decodeCheckRequest(bytes)).toEqual(fromBinary(CheckMembershipRequestSchema, bytes));
  });

  it("takes the last user_id when the field repeats, as protobuf-es does", () => {
    const bytes = Buffer.concat([encode("first", ["a"]), encode("second", ["b"])]);
    expect(decodeCheckRequest(bytes)).toEqual(fromBinary(CheckMembershipRequestSchema, bytes));
  });

  it.each([
    ["non-ASCII text", encode("üser", ["s"])],
    ["an unknown field", Buffer.concat([encode("u", ["s"]), Buffer.from([0x18, 0x01])])],
    ["a truncated string", encode("user_42", ["s"]).subarray(0, 5)],
    ["a truncated length", Buffer.from([0x0a])],
  ])("leaves %s to protobuf-es", (_, bytes) => {
    expect(decodeCheckRequest(bytes)).toBeUndefined();
  });
});
