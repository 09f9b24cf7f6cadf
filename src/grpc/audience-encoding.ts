/**
 * StreamAudienceResponse written from the directory's UTF-8 bytes: field 1 (user_ids) is framed
 * here, tag and length before each id's bytes, and protobuf-es encodes only the few other fields,
 * appended after (protobuf allows a message's encoded fields to be concatenated). The bytes are
 * those protobuf-es would write for the same message, in the same field order, without a string
 * per id: protobuf-es took a string per id and encoded each one back to UTF-8.
 */
import { create, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { StreamAudienceResponseSchema } from "../gen/segments/v1/membership_service_pb.js";
import type { SegmentVersionSchema } from "../gen/segments/v1/segment_pb.js";
import type { UserIdChunk } from "../store/user-id-chunk.js";
import { EncodedMessage } from "./adapter.js";

/** Field 1, length-delimited. */
const USER_IDS_TAG = (1 << 3) | 2;

/** The response holding `ids` as user_ids and `rest` as its other fields, encoded. */
export function encodeAudienceBatch(
  ids: UserIdChunk,
  rest: { resumeToken: string; asOf: MessageInitShape<typeof SegmentVersionSchema>[]; totalCount: bigint; snapshotKept?: boolean },
): EncodedMessage {
  const tail = toBinary(StreamAudienceResponseSchema, create(StreamAudienceResponseSchema, rest));
  const { bytes, ends } = ids;
  const count = ends.length;
  // Ids are at most 256 bytes, so each length is a one- or two-byte varint.
  let size = tail.length + bytes.length + count * 2;
  for (let i = 0, start = 0; i < count; i++) {
    const end = ends[i] ?? 0;
    if (end - start >= 0x80) size++;
    start = end;
  }
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (let i = 0, start = 0; i < count; i++) {
    const end = ends[i] ?? 0;
    const length = end - start;
    out[at++] = USER_IDS_TAG;
    if (length < 0x80) out[at++] = length;
    else {
      out[at++] = (length & 0x7f) | 0x80;
      out[at++] = length >>> 7;
    }
    // A loop beats set(subarray()) for ids this short: subarray allocates.
    for (let k = start; k < end; k++) out[at++] = bytes[k] as number;
    start = end;
  }
  out.set(tail, at);
  return new EncodedMessage(out);
}
