/**
 * CheckMembershipResponse and BatchCheckMembershipResponse written directly to bytes: the hot
 * paths' answers without the message objects, Timestamp messages and BinaryWriter chunks
 * protobuf-es allocates for them (its create + toBinary were the largest item of our own code in a
 * CheckMembership server profile; for a batch, a JS boolean per id and a write per flag).
 * The bytes are those protobuf-es writes for the same message: fields in number order, default
 * values left out, version_time present whenever the version has a time, repeated bools packed.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { BatchCheckMembershipResponseSchema, CheckMembershipResponseSchema } from "../gen/segments/v1/membership_service_pb.js";
import type { BatchAnswer, MembershipAnswer } from "../service/membership-service.js";
import { EncodedMessage } from "./adapter.js";

// Tags: (field number << 3) | wire type (0 varint, 2 length-delimited).
const RESULTS = (1 << 3) | 2;
const SEGMENT_ID = (1 << 3) | 2;
const MEMBER = 2 << 3;
const VERSION = 3 << 3;
const VERSION_TIME = (4 << 3) | 2;
const STALE = 5 << 3;
const SECONDS = 1 << 3;
const NANOS = 2 << 3;

/** The CheckMembershipResponse holding `answers`, in order. */
export function encodeCheckResponse(answers: readonly MembershipAnswer[]): EncodedMessage {
  let size = 0;
  for (const answer of answers) {
    // Times before 1970 (negative seconds) and versions past 2^53 never occur; protobuf-es writes them.
    const ms = answer.versionAt === null ? 0 : answer.versionAt.getTime();
    if (!(ms >= 0 && answer.version >= 0 && Number.isSafeInteger(answer.version))) return viaProtobufEs(answers);
    const body = resultSize(answer);
    size += 1 + varintSize(body) + body;
  }
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (const answer of answers) {
    out[at++] = RESULTS;
    at = writeVarint(out, at, resultSize(answer));
    const idBytes = Buffer.byteLength(answer.segmentId);
    if (idBytes > 0) {
      out[at++] = SEGMENT_ID;
      at = writeVarint(out, at, idBytes);
      at += out.write(answer.segmentId, at, "utf8");
    }
    if (answer.member) {
      out[at++] = MEMBER;
      out[at++] = 1;
    }
    if (answer.version !== 0) {
      out[at++] = VERSION;
      at = writeVarint(out, at, answer.version);
    }
    if (answer.versionAt !== null) at = writeTimestamp(out, at, VERSION_TIME, answer.versionAt);
    if (answer.stale) {
      out[at++] = STALE;
      out[at++] = 1;
    }
  }
  return new EncodedMessage(out);
}

// BatchCheckMembershipResponse's tags.
const BATCH_MEMBERS = (1 << 3) | 2;
const BATCH_VERSION = 2 << 3;
const BATCH_VERSION_TIME = (3 << 3) | 2;
const BATCH_STALE = 4 << 3;

/** The BatchCheckMembershipResponse of `answer`: its member flags are already the packed field's bytes. */
export function encodeBatchCheckResponse(answer: BatchAnswer): EncodedMessage {
  const { members, version, versionAt, stale } = answer;
  const ms = versionAt === null ? 0 : versionAt.getTime();
  if (!(ms >= 0 && version >= 0 && Number.isSafeInteger(version))) return batchViaProtobufEs(answer);
  let size = members.length > 0 ? 1 + varintSize(members.length) + members.length : 0;
  if (version !== 0) size += 1 + varintSize(version);
  if (versionAt !== null) {
    const { seconds, nanos } = split(versionAt);
    const time = timestampSize(seconds, nanos);
    size += 1 + varintSize(time) + time;
  }
  if (stale) size += 2;
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  if (members.length > 0) {
    out[at++] = BATCH_MEMBERS;
    at = writeVarint(out, at, members.length);
    out.set(members, at);
    at += members.length;
  }
  if (version !== 0) {
    out[at++] = BATCH_VERSION;
    at = writeVarint(out, at, version);
  }
  if (versionAt !== null) at = writeTimestamp(out, at, BATCH_VERSION_TIME, versionAt);
  if (stale) {
    out[at++] = BATCH_STALE;
    out[at++] = 1;
  }
  return new EncodedMessage(out);
}

/** Writes `date` as the Timestamp field `tag` at `at`; returns where it ends. */
function writeTimestamp(out: Buffer, at: number, tag: number, date: Date): number {
  const { seconds, nanos } = split(date);
  let end = at;
  out[end++] = tag;
  end = writeVarint(out, end, timestampSize(seconds, nanos));
  if (seconds !== 0) {
    out[end++] = SECONDS;
    end = writeVarint(out, end, seconds);
  }
  if (nanos !== 0) {
    out[end++] = NANOS;
    end = writeVarint(out, end, nanos);
  }
  return end;
}

function resultSize(answer: MembershipAnswer): number {
  const idBytes = Buffer.byteLength(answer.segmentId);
  let size = idBytes > 0 ? 1 + varintSize(idBytes) + idBytes : 0;
  if (answer.member) size += 2;
  if (answer.version !== 0) size += 1 + varintSize(answer.version);
  if (answer.versionAt !== null) {
    const { seconds, nanos } = split(answer.versionAt);
    const time = timestampSize(seconds, nanos);
    size += 1 + varintSize(time) + time;
  }
  if (answer.stale) size += 2;
  return size;
}

/** A Timestamp's fields, as timestampFromDate computes them. */
function split(date: Date): { seconds: number; nanos: number } {
  const ms = date.getTime();
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: (ms - seconds * 1000) * 1_000_000 };
}

function timestampSize(seconds: number, nanos: number): number {
  return (seconds === 0 ? 0 : 1 + varintSize(seconds)) + (nanos === 0 ? 0 : 1 + varintSize(nanos));
}

/** Bytes of the varint of a non-negative safe integer. */
function varintSize(value: number): number {
  let size = 1;
  for (let v = value; v >= 0x80; v = Math.floor(v / 0x80)) size++;
  return size;
}

function writeVarint(out: Buffer, at: number, value: number): number {
  let v = value;
  while (v >= 0x80) {
    out[at++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  out[at++] = v;
  return at;
}

function viaProtobufEs(answers: readonly MembershipAnswer[]): EncodedMessage {
  const results = answers.map((answer) => ({
    segmentId: answer.segmentId,
    member: answer.member,
    version: BigInt(answer.version),
    versionTime: answer.versionAt === null ? undefined : timestampFromDate(answer.versionAt),
    stale: answer.stale,
  }));
  return new EncodedMessage(toBinary(CheckMembershipResponseSchema, create(CheckMembershipResponseSchema, { results })));
}

function batchViaProtobufEs(answer: BatchAnswer): EncodedMessage {
  const message = create(BatchCheckMembershipResponseSchema, {
    members: Array.from(answer.members, (flag) => flag === 1),
    version: BigInt(answer.version),
    versionTime: answer.versionAt === null ? undefined : timestampFromDate(answer.versionAt),
    stale: answer.stale,
  });
  return new EncodedMessage(toBinary(BatchCheckMembershipResponseSchema, message));
}
