/**
 * BatchCheckMembershipRequest read straight from its wire bytes: the user ids stay UTF-8, copied
 * back to back into a UserIdChunk that UserDirectory.lookupManyUtf8 resolves, so a 10,000-id
 * batch makes no string per id (protobuf-es made 10,000, and the lookup encoded each one again).
 *
 * Only messages whose meaning is beyond doubt take this path: well-formed wire data, every id
 * 1–256 bytes of UTF-8 without NUL. Anything else — truncation, a bad wire type, a group, invalid
 * UTF-8, an empty or NUL-holding id — is left to protobuf-es and the string path, so a refused
 * request gets exactly the refusal it always got (property test: batch-check-decoding.test.ts).
 */
import { isUtf8 } from "node:buffer";
import type { BatchCheckMembershipRequest } from "../gen/segments/v1/membership_service_pb.js";
import { UserIdChunk } from "../store/user-id-chunk.js";

const VARINT = 0;
const FIXED64 = 1;
const LENGTH_DELIMITED = 2;
const FIXED32 = 5;
const SEGMENT_ID_TAG = (1 << 3) | LENGTH_DELIMITED;
const USER_IDS_TAG = (2 << 3) | LENGTH_DELIMITED;
const MAX_ID_BYTES = 256;

/** Like protobuf-es: a leading U+FEFF is text, not a byte-order mark (the bytes are valid UTF-8 by then). */
const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * A BatchCheckMembershipRequest whose user ids are UTF-8 byte ranges. It is also a valid message
 * shape: `userIds` decodes the strings on first use, for code that wants them.
 */
export class BatchCheckBytes implements BatchCheckMembershipRequest {
  readonly $typeName = "segments.v1.BatchCheckMembershipRequest" as const;
  private strings: string[] | undefined;

  constructor(
    readonly segmentId: string,
    readonly ids: UserIdChunk,
  ) {}

  /** The ids as strings (one allocation per id: the fast path never asks). */
  get userIds(): string[] {
    this.strings ??= [...this.ids];
    return this.strings;
  }
}

/** Reused between calls: a request is copied out of them before it is returned. */
let scratchBytes = new Uint8Array(64 * 1024);
let scratchEnds = new Uint32Array(4096);
/** Where the varint read by `varint` ends (-1 when truncated or longer than 5 bytes). */
let varintEnd = 0;

/**
 * The request in `bytes` with its ids as byte ranges, or undefined when it is malformed or holds
 * an id that must be refused (the caller then decodes it with protobuf-es to say why).
 */
export function decodeBatchCheck(bytes: Uint8Array): BatchCheckBytes | undefined {
  if (scratchBytes.length < bytes.length) scratchBytes = new Uint8Array(Math.max(bytes.length, scratchBytes.length * 2));
  const out = scratchBytes;
  let ends = scratchEnds;
  let fill = 0;
  let count = 0;
  let segmentStart = -1;
  let segmentEnd = -1;
  const size = bytes.length;
  let pos = 0;
  while (pos < size) {
    // Tags and lengths are one byte for nearly every field: read those inline.
    let tag = bytes[pos] as number;
    if (tag < 0x80) pos++;
    else {
      tag = varint(bytes, pos);
      if (varintEnd < 0) return undefined;
      pos = varintEnd;
    }
    if (tag >>> 3 === 0) return undefined;
    const wireType = tag & 7;
    if (wireType === LENGTH_DELIMITED) {
      if (pos >= size) return undefined;
      let length = bytes[pos] as number;
      if (length < 0x80) pos++;
      else {
        length = varint(bytes, pos);
        if (varintEnd < 0) return undefined;
        pos = varintEnd;
      }
      if (length > size - pos) return undefined;
      const start = pos;
      pos += length;
      if (tag === USER_IDS_TAG) {
        // NUL and invalid UTF-8 are checked once over all the ids below. An id that starts with a
        // continuation byte is invalid on its own but could complete its neighbour in the joined
        // bytes, so it is refused here: then the joined bytes are UTF-8 exactly when each id is.
        const first = bytes[start] as number;
        if (length === 0 || length > MAX_ID_BYTES || (first >= 0x80 && first < 0xc0)) return undefined;
        // A loop beats set(subarray()) for ids this short: subarray allocates.
        for (let i = 0; i < length; i++) out[fill + i] = bytes[start + i] as number;
        fill += length;
        if (count === ends.length) {
          const grown = new Uint32Array(ends.length * 2);
          grown.set(ends);
          ends = scratchEnds = grown;
        }
        ends[count++] = fill;
      } else if (tag === SEGMENT_ID_TAG) {
        // The last occurrence wins, but protobuf-es refuses invalid UTF-8 in any of them.
        if (!isUtf8(bytes.subarray(start, pos))) return undefined;
        segmentStart = start;
        segmentEnd = pos;
      }
    } else if (tag >>> 3 === 1 || tag >>> 3 === 2) {
      // A known field with another wire type: protobuf-es decides what that means.
      return undefined;
    } else if (wireType === VARINT) {
      const last = Math.min(size, pos + 10);
      while (pos < last && (bytes[pos] as number) >= 0x80) pos++;
      if (pos >= last) return undefined;
      pos++;
    } else if (wireType === FIXED64 || wireType === FIXED32) {
      pos += wireType === FIXED64 ? 8 : 4;
      if (pos > size) return undefined;
    } else {
      // Groups (3, 4) and the unused wire types 6 and 7.
      return undefined;
    }
  }
  const joined = out.subarray(0, fill);
  if (joined.indexOf(0) >= 0 || !isUtf8(joined)) return undefined;
  const segmentId = segmentStart < 0 ? "" : decoder.decode(bytes.subarray(segmentStart, segmentEnd));
  return new BatchCheckBytes(segmentId, new UserIdChunk(joined.slice(), ends.slice(0, count)));
}

/**
 * The varint at `pos` if it has at most 5 bytes and is below 2^32 (what protobuf-es reads as a
 * uint32 without question), its end in `varintEnd`; else varintEnd is −1.
 */
function varint(bytes: Uint8Array, pos: number): number {
  let value = 0;
  for (let i = 0; i < 5 && pos + i < bytes.length; i++) {
    const byte = bytes[pos + i] as number;
    value += (byte & 0x7f) * 2 ** (7 * i);
    if (byte < 0x80) {
      varintEnd = value > 0xffffffff ? -1 : pos + i + 1;
      return value;
    }
  }
  varintEnd = -1;
  return 0;
}
