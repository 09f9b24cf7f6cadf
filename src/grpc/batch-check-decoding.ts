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
    // Tag: a varint of at most 5 bytes below 2^32 (what protobuf-es reads as uint32).
    let tag = 0;
    let byte = 0x80;
    let shift = 0;
    for (; shift < 35 && byte >= 0x80; shift += 7) {
      if (pos >= size) return undefined;
      byte = bytes[pos++] as number;
      tag += (byte & 0x7f) * 2 ** shift;
    }
    if (byte >= 0x80 || tag > 0xffffffff || tag >>> 3 === 0) return undefined;
    const wireType = tag & 7;
    if (wireType === LENGTH_DELIMITED) {
      let length = 0;
      byte = 0x80;
      for (shift = 0; shift < 35 && byte >= 0x80; shift += 7) {
        if (pos >= size) return undefined;
        byte = bytes[pos++] as number;
        length += (byte & 0x7f) * 2 ** shift;
      }
      if (byte >= 0x80 || length > size - pos) return undefined;
      const start = pos;
      pos += length;
      if (tag === USER_IDS_TAG) {
        if (length === 0 || length > MAX_ID_BYTES) return undefined;
        // One pass copies, spots NUL (refused) and non-ASCII (then checked as UTF-8 below).
        let high = 0;
        for (let i = 0; i < length; i++) {
          const b = bytes[start + i] as number;
          if (b === 0) return undefined;
          high |= b;
          out[fill + i] = b;
        }
        if (high >= 0x80 && !isUtf8(out.subarray(fill, fill + length))) return undefined;
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
  const segmentId = segmentStart < 0 ? "" : decoder.decode(bytes.subarray(segmentStart, segmentEnd));
  return new BatchCheckBytes(segmentId, new UserIdChunk(out.slice(0, fill), ends.slice(0, count)));
}
