/**
 * Requests that carry a list of user ids, read straight from their wire bytes: the ids stay
 * UTF-8, copied back to back into a UserIdChunk that the directory resolves (lookupManyUtf8), so
 * a 100,000-id AddMembers makes no string per id (protobuf-es made one each, and every lookup
 * encoded it again). BatchCheckMembership, AddMembers and RemoveMembers share one shape
 * (`segment_id = 1`, `repeated user_ids = 2`); ImportMembers adds `mode = 2`, moves the ids to
 * field 3 and has `text = 4`.
 *
 * Only messages whose meaning is beyond doubt take this path: well-formed wire data, every id
 * 1–256 bytes of UTF-8 without NUL. Anything else — truncation, a bad wire type, a group, invalid
 * UTF-8, an empty or NUL-holding id — is left to protobuf-es and the string path, so a refused
 * request gets exactly the refusal it always got (property test: id-list-decoding.test.ts).
 */
import { isUtf8 } from "node:buffer";
import type { ImportMode } from "../gen/segments/v1/segment_service_pb.js";
import { copyBytes, ViewCache } from "../index/byte-copy.js";
import { hasNul } from "../service/validation.js";
import { UserIdChunk } from "../store/user-id-chunk.js";
import type { FastDecoder } from "./request-decoding.js";
import { tooManyEntries } from "./wire-limits.js";

const VARINT = 0;
const FIXED64 = 1;
const LENGTH_DELIMITED = 2;
const FIXED32 = 5;
const MAX_ID_BYTES = 256;

/** Like protobuf-es: a leading U+FEFF is text, not a byte-order mark (the bytes are valid UTF-8 by then). */
const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * A request whose user ids are UTF-8 byte ranges. It is also a valid message shape: `userIds`
 * decodes the strings on first use, for code that wants them.
 */
export class IdListBytes<T extends string> {
  private strings: string[] | undefined;

  constructor(
    readonly $typeName: T,
    readonly segmentId: string,
    readonly ids: UserIdChunk,
  ) {}

  /** The ids as strings (one allocation per id: the fast path never asks). */
  get userIds(): string[] {
    this.strings ??= [...this.ids];
    return this.strings;
  }
}

/** An ImportMembersRequest whose user ids are UTF-8 byte ranges (see IdListBytes). */
export class ImportMembersBytes extends IdListBytes<"segments.v1.ImportMembersRequest"> {
  constructor(
    segmentId: string,
    ids: UserIdChunk,
    readonly mode: ImportMode,
    readonly text: Uint8Array,
  ) {
    super("segments.v1.ImportMembersRequest", segmentId, ids);
  }
}

/**
 * What the method's precheck refuses (server.ts: entryLimit with these figures), which an id-list
 * decoder enforces itself on the messages it accepts, so the precheck need not walk them first.
 */
export interface IdListLimits {
  /** More user ids than this: refused (tooManyEntries on `user_ids`, with `advice`). */
  maxIds: number;
  advice: string;
  /** A segment id longer than this is left to the precheck (which refuses it). */
  maxSegmentIdBytes: number;
}

/**
 * A decoder for `{ string segment_id = 1; repeated string user_ids = 2; }` messages of type
 * `typeName`, enforcing `limits` (FastDecoder.enforcesPrecheck). It refuses too many ids at the
 * first id past the limit, where the precheck does; anything the precheck would refuse sooner (an
 * over-long id or segment id, malformed bytes) it leaves to the precheck by declining the message.
 */
export function idListDecoder<T extends string>(
  typeName: T,
  limits: IdListLimits,
): ((bytes: Uint8Array) => IdListBytes<T> | undefined) & FastDecoder {
  const decode = (bytes: Uint8Array): IdListBytes<T> | undefined => {
    const fields = walk(bytes, 2, { strings: [1], bytes: [], varints: [], maxBytes: limits.maxSegmentIdBytes }, limits);
    return fields === undefined ? undefined : new IdListBytes(typeName, text(bytes, fields.ranges[1]), fields.ids);
  };
  return Object.assign(decode, { enforcesPrecheck: true });
}

/** ImportMembersRequest: `segment_id = 1`, `mode = 2`, `repeated user_ids = 3`, `bytes text = 4`. */
export function decodeImportMembers(bytes: Uint8Array): ImportMembersBytes | undefined {
  const fields = walk(bytes, 3, { strings: [1], bytes: [4], varints: [2] });
  if (fields === undefined) return undefined;
  const [start, end] = fields.ranges[4] ?? [0, 0];
  // A copy: the request buffer is grpc-js's, and the text may outlive this call in the parser.
  return new ImportMembersBytes(text(bytes, fields.ranges[1]), fields.ids, (fields.varints[2] ?? 0) as ImportMode, bytes.slice(start, end));
}

/** The singular fields a message has besides its ids, by field number. */
interface Singular {
  /** Strings: checked as UTF-8, as protobuf-es does. */
  strings: readonly number[];
  bytes: readonly number[];
  /** Enums and integers that protobuf-es reads as int32: varints below 2^31. */
  varints: readonly number[];
  /** A string or bytes field longer than this declines the message (default: no cap). */
  maxBytes?: number;
}

/** A walked message: its ids, and its singular fields' last occurrences (byte range or value) by field number. */
interface Walked {
  ids: UserIdChunk;
  ranges: Record<number, [number, number]>;
  varints: Record<number, number>;
}

/** Reused between calls: a request is copied out of them before it is returned. */
let scratchBytes = new Uint8Array(64 * 1024);
let scratchEnds = new Uint32Array(4096);
const scratchViews = new ViewCache();
/** Where the varint read by `varint` ends (-1 when truncated or longer than 5 bytes). */
let varintEnd = 0;

/**
 * Walks a message whose repeated string field `idsField` holds user ids and whose other known
 * fields are `singular`; undefined when anything is out of the ordinary.
 */
function walk(bytes: Uint8Array, idsField: number, singular: Singular, limit?: { maxIds: number; advice: string }): Walked | undefined {
  const maxIds = limit?.maxIds ?? Number.POSITIVE_INFINITY;
  const maxBytes = singular.maxBytes ?? Number.POSITIVE_INFINITY;
  // Room for the ids it can copy: a message over the id limit is refused at the first id past it,
  // so a 64 MiB one of tiny ids must not leave a 64 MiB buffer behind.
  const room = Math.min(bytes.length, maxIds * MAX_ID_BYTES);
  if (scratchBytes.length < room) scratchBytes = new Uint8Array(Math.max(room, scratchBytes.length * 2));
  const out = scratchBytes;
  const outView = scratchViews.of(out);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let ends = scratchEnds;
  let fill = 0;
  let count = 0;
  const ranges: Record<number, [number, number]> = {};
  const varints: Record<number, number> = {};
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
    const field = tag >>> 3;
    if (field === 0) return undefined;
    const wireType = tag & 7;
    if (field === idsField && wireType === LENGTH_DELIMITED) {
      // The ids are nearly every field: they skip the look-ups of the singular fields' numbers.
      let length = bytes[pos] ?? 0;
      if (length < 0x80) pos++;
      else {
        length = varint(bytes, pos);
        if (varintEnd < 0) return undefined;
        pos = varintEnd;
      }
      if (pos > size || length > size - pos) return undefined;
      // NUL and invalid UTF-8 are checked once over all the ids below. An id that starts with a
      // continuation byte is invalid on its own but could complete its neighbour in the joined
      // bytes, so it is refused here: then the joined bytes are UTF-8 exactly when each id is.
      const first = bytes[pos] as number;
      if (length === 0 || length > MAX_ID_BYTES || (first >= 0x80 && first < 0xc0)) return undefined;
      if (count === maxIds) throw tooManyEntries("user_ids", maxIds, limit?.advice ?? "");
      copyBytes(view, pos, outView, fill, length);
      pos += length;
      fill += length;
      if (count === ends.length) {
        const grown = new Uint32Array(ends.length * 2);
        grown.set(ends);
        ends = scratchEnds = grown;
      }
      ends[count++] = fill;
      continue;
    }
    const isString = singular.strings.includes(field);
    const isRange = isString || singular.bytes.includes(field);
    const isVarint = singular.varints.includes(field);
    const known = field === idsField || isRange || isVarint;
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
      if (isRange) {
        if (length > maxBytes) return undefined;
        // The last occurrence wins, but protobuf-es refuses invalid UTF-8 in any string one.
        if (isString && !isUtf8(bytes.subarray(start, pos))) return undefined;
        ranges[field] = [start, pos];
      } else if (isVarint) {
        // A packed or length-delimited scalar: protobuf-es decides what that means.
        return undefined;
      }
    } else if (known && !(wireType === VARINT && isVarint)) {
      // A known field with another wire type: protobuf-es decides what that means.
      return undefined;
    } else if (wireType === VARINT) {
      if (known) {
        const value = varint(bytes, pos);
        if (varintEnd < 0 || value > 0x7fffffff) return undefined;
        varints[field] = value;
        pos = varintEnd;
        continue;
      }
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
  if (hasNul(joined) || !isUtf8(joined)) return undefined;
  return { ids: new UserIdChunk(joined.slice(), ends.slice(0, count)), ranges, varints };
}

/** The string at `range` of `bytes` ("" when the field was absent). */
function text(bytes: Uint8Array, range: [number, number] | undefined): string {
  return range === undefined ? "" : decoder.decode(bytes.subarray(range[0], range[1]));
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
