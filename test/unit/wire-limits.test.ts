import { create, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { InvalidArgumentError } from "../../src/errors.js";
import { AddMembersRequestSchema, ImportMembersRequestSchema } from "../../src/gen/segments/v1/segment_service_pb.js";
import { entryLimit } from "../../src/grpc/wire-limits.js";

const addLimit = entryLimit({ repeated: [2] }, 3, "user_ids", "split it");
const importLimit = entryLimit({ repeated: [3], lines: [4] }, 3, "user_ids", "split it");
const add = (userIds: string[]) => toBinary(AddMembersRequestSchema, create(AddMembersRequestSchema, { segmentId: "s", userIds }));
const imported = (userIds: string[], text: string) =>
  toBinary(
    ImportMembersRequestSchema,
    create(ImportMembersRequestSchema, { segmentId: "s", userIds, text: new TextEncoder().encode(text) }),
  );

describe("entryLimit", () => {
  it("accepts up to the limit and refuses one more, naming the field and the limit", () => {
    expect(() => addLimit(add(["a", "b", "c"]))).not.toThrow();
    expect(() => addLimit(add(["a", "b", "c", "d"]))).toThrow(InvalidArgumentError);
    expect(() => addLimit(add(["a", "b", "c", "d"]))).toThrow("user_ids: more than 3 entries in one message is over the limit of 3");
  });

  it("counts text lines (a final line without a newline too) together with listed ids", () => {
    expect(() => importLimit(imported([], "a\nb\nc\n"))).not.toThrow();
    expect(() => importLimit(imported([], "a\nb\nc"))).not.toThrow();
    expect(() => importLimit(imported([], "a\nb\nc\nd"))).toThrow(InvalidArgumentError);
    expect(() => importLimit(imported(["x", "y"], "a\nb"))).toThrow(InvalidArgumentError);
    expect(() => importLimit(imported(["x"], "a\nb"))).not.toThrow();
  });

  it("leaves malformed bytes to the decoder instead of throwing on them", () => {
    for (const bytes of [new Uint8Array([0xff]), new Uint8Array([0x12, 0x50]), new Uint8Array([0x0f, 0x01])]) {
      expect(() => addLimit(bytes)).not.toThrow();
    }
  });
});

describe("entryLimit on the length of single entries", () => {
  const capped = entryLimit(
    { repeated: [2], longest: { 1: { bytes: 64, name: "segment_id" }, 2: { bytes: 4, name: "user_ids" } } },
    10,
    "user_ids",
    "x",
  );
  it("refuses an id longer than its cap before decoding, naming the field", () => {
    expect(() => capped(add(["abcd"]))).not.toThrow();
    expect(() => capped(add(["abcde"]))).toThrow("user_ids: an entry of 5 bytes is over the limit of 4 bytes");
    const longSegment = toBinary(AddMembersRequestSchema, create(AddMembersRequestSchema, { segmentId: "s".repeat(65), userIds: ["a"] }));
    expect(() => capped(longSegment)).toThrow("segment_id: an entry of 65 bytes");
  });
});
