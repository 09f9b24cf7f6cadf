/**
 * CheckMembershipRequest read straight from its wire bytes, for the common case only: fields 1
 * (user_id) and 2 (segment_ids) and nothing else, every byte of every string ASCII. Then the
 * strings are sliced out as latin1 (which ASCII is) and the message is a plain object, without
 * protobuf-es's reader, its message creation, or a UTF-8 decode. Anything else (another field,
 * non-ASCII text, truncation) returns undefined, and protobuf-es decodes it, or refuses it, as
 * it always did.
 */
import type { CheckMembershipRequest } from "../gen/segments/v1/membership_service_pb.js";

const USER_ID_TAG = (1 << 3) | 2;
const SEGMENT_IDS_TAG = (2 << 3) | 2;

/** The request in `bytes`, or undefined when it is not the plain ASCII case. */
export function decodeCheckRequest(bytes: Uint8Array): CheckMembershipRequest | undefined {
  const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let userId = "";
  const segmentIds: string[] = [];
  let pos = 0;
  while (pos < buffer.length) {
    const tag = buffer[pos++];
    if (tag !== USER_ID_TAG && tag !== SEGMENT_IDS_TAG) return undefined;
    // A length of up to 28 bits (4 varint bytes) is plenty: the precheck caps the message size.
    let length = 0;
    let shift = 0;
    for (;;) {
      if (pos >= buffer.length || shift > 21) return undefined;
      const byte = buffer[pos++] as number;
      length |= (byte & 0x7f) << shift;
      if (byte < 0x80) break;
      shift += 7;
    }
    const end = pos + length;
    if (end > buffer.length) return undefined;
    for (let i = pos; i < end; i++) if ((buffer[i] as number) >= 0x80) return undefined;
    const text = buffer.toString("latin1", pos, end);
    // A repeated singular field: the last one wins, as in protobuf-es.
    if (tag === USER_ID_TAG) userId = text;
    else segmentIds.push(text);
    pos = end;
  }
  return { $typeName: "segments.v1.CheckMembershipRequest", userId, segmentIds };
}
