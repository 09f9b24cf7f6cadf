import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { StreamAudienceResponseSchema } from "../../src/gen/segments/v1/membership_service_pb.js";
import { encodeAudienceBatch } from "../../src/grpc/audience-encoding.js";
import { UserDirectory } from "../../src/index/user-directory.js";
import { UserIdChunk } from "../../src/store/user-id-chunk.js";

const ids = ["a", "", "ü€😀", "\uFEFFbom", "x".repeat(127), "y".repeat(128), "z".repeat(256), "user-42"];

/** The ids through the directory, as the audience stream reads them: uid i has ids[i]. */
function chunkOf(list: string[]): UserIdChunk {
  const directory = new UserDirectory();
  list.forEach((id, uid) => {
    if (id !== "") directory.add(uid, id);
  });
  const bytes = new Uint8Array(list.length * 256);
  const ends = new Uint32Array(list.length);
  let fill = 0;
  for (let uid = 0; uid < list.length; uid++) {
    fill = directory.copyId(uid, bytes, fill);
    ends[uid] = fill;
  }
  return new UserIdChunk(bytes.subarray(0, fill), ends);
}

describe("StreamAudienceResponse encoded from the directory's bytes", () => {
  const asOf = [
    { segmentId: "s1", version: 7n, time: timestampFromDate(new Date(1_700_000_000_123)), stale: true },
    { segmentId: "s2", version: 0n, stale: false },
  ];
  const batches = [
    { resumeToken: "tok", asOf, totalCount: 12_345n, snapshotKept: true },
    { resumeToken: "tok", asOf, totalCount: 8n, snapshotKept: false },
    { resumeToken: "tok", asOf, totalCount: 8n },
    { resumeToken: "next", asOf: [], totalCount: 0n },
  ];

  it("writes the bytes protobuf-es writes for the same message", () => {
    for (const rest of batches) {
      for (const list of [ids, [], ["only"]]) {
        const encoded = encodeAudienceBatch(chunkOf(list), rest);
        const reference = toBinary(StreamAudienceResponseSchema, create(StreamAudienceResponseSchema, { ...rest, userIds: list }));
        expect(Buffer.from(encoded.bytes).equals(Buffer.from(reference))).toBe(true);
        expect(fromBinary(StreamAudienceResponseSchema, encoded.bytes).userIds).toEqual(list);
      }
    }
  });

  it("copies nothing for a uid never assigned", () => {
    const directory = new UserDirectory();
    directory.add(3, "abc");
    const target = new Uint8Array(8);
    expect(directory.copyId(2, target, 1)).toBe(1);
    expect(directory.copyId(3, target, 1)).toBe(4);
    expect(directory.copyId(-1, target, 1)).toBe(1);
    expect(Buffer.from(target.subarray(1, 4)).toString()).toBe("abc");
  });
});
