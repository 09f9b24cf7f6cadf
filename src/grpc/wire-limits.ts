/**
 * Per-message limits checked on the protobuf wire bytes, before decoding: counting the entries of
 * a repeated field costs a walk over tags that stops at the limit, while decoding 9.8M ids first
 * (a 64 MiB message) would block the event loop for seconds and take gigabytes.
 */
import { InvalidArgumentError, ResourceExhaustedError } from "../errors.js";
import type { Precheck } from "./request-decoding.js";

const VARINT = 0;
const FIXED64 = 1;
const LENGTH_DELIMITED = 2;
const FIXED32 = 5;
const LF = 0x0a;

/** Field numbers of a message whose entries count against one limit. */
export interface CountedFields {
  /** Repeated string fields: each occurrence is one entry. */
  repeated: readonly number[];
  /** Bytes fields holding newline-separated text: each line is one entry. */
  lines?: readonly number[];
  /**
   * Fields whose every occurrence must be at most this many bytes (ids): a 25 MB "id" is refused
   * before it costs a decode, as it would be refused after one.
   */
  longest?: Readonly<Record<number, { bytes: number; name: string }>>;
}

/**
 * A precheck refusing a message with more than `limit` entries in `fields`. Malformed wire data is
 * left for the decoder to report.
 */
export function entryLimit(fields: CountedFields, limit: number, field: string, advice: string): Precheck {
  const repeated = new Set(fields.repeated);
  const lines = new Set(fields.lines ?? []);
  const longest = fields.longest ?? {};
  return (bytes) => {
    let entries = 0;
    let pos = 0;
    while (pos < bytes.length) {
      const tag = readVarint(bytes, pos);
      if (tag < 0) return;
      pos = varintNext;
      const fieldNo = Math.floor(tag / 8);
      const wireType = tag % 8;
      if (wireType === LENGTH_DELIMITED) {
        const length = readVarint(bytes, pos);
        if (length < 0) return;
        const start = varintNext;
        pos = start + length;
        const cap = longest[fieldNo];
        if (cap !== undefined && length > cap.bytes) {
          throw new InvalidArgumentError(cap.name, `an entry of ${length} bytes is over the limit of ${cap.bytes} bytes`);
        }
        if (repeated.has(fieldNo)) entries++;
        else if (lines.has(fieldNo)) entries += countLines(bytes, start, Math.min(pos, bytes.length), limit - entries + 1);
      } else if (wireType === VARINT) {
        if (readVarint(bytes, pos) < 0) return;
        pos = varintNext;
      } else if (wireType === FIXED64) pos += 8;
      else if (wireType === FIXED32) pos += 4;
      else return;
      if (entries > limit) {
        throw tooManyEntries(field, limit, advice);
      }
    }
  };
}

/** The refusal of a message with more than `limit` entries (entryLimit's, and the id-list decoders'). */
export function tooManyEntries(field: string, limit: number, advice: string): InvalidArgumentError {
  return new InvalidArgumentError(field, `more than ${limit} entries in one message is over the limit of ${limit}; ${advice}`);
}

/**
 * A precheck refusing a request over `maxBytes` (then running `then`), for methods whose requests
 * are small by nature (ids, names, a query): decoding a 24 MiB GetSegment only to refuse it held
 * the event loop for tens of milliseconds, and no real client sends one.
 */
export function sizeLimit(maxBytes: number, then?: Precheck): Precheck {
  return (bytes) => {
    if (bytes.length > maxBytes) {
      throw new ResourceExhaustedError(
        "request",
        `a request of ${bytes.length} bytes is over this method's limit of ${maxBytes} bytes; only member lists may be larger`,
      );
    }
    then?.(bytes);
  };
}

/** Lines in bytes[start, end), counting a final line without LF; stops once past `stop`. */
function countLines(bytes: Uint8Array, start: number, end: number, stop: number): number {
  if (end <= start) return 0;
  let count = bytes[end - 1] === LF ? 0 : 1;
  for (let lf = bytes.indexOf(LF, start); lf >= 0 && lf < end && count <= stop; lf = bytes.indexOf(LF, lf + 1)) count++;
  return count;
}

/** Where the varint `readVarint` read last ends: a variable, not a returned object, so a precheck allocates nothing. */
let varintNext = 0;

/** A base-128 varint at `pos` (up to 2^53), or -1 when truncated or too long; sets varintNext. */
function readVarint(bytes: Uint8Array, pos: number): number {
  let value = 0;
  let scale = 1;
  for (let i = pos; i < bytes.length && i < pos + 10; i++) {
    const byte = bytes[i] as number;
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) {
      varintNext = i + 1;
      return value;
    }
    scale *= 128;
  }
  return -1;
}
