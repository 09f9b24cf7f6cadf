import { fromBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { DomainError } from "../../src/errors.js";
import { BatchCheckMembershipRequestSchema } from "../../src/gen/segments/v1/membership_service_pb.js";
import {
  AddMembersRequestSchema,
  ImportMembersRequestSchema,
  RemoveMembersRequestSchema,
} from "../../src/gen/segments/v1/segment_service_pb.js";
import { decodeImportMembers, IdListBytes, ImportMembersBytes, idListDecoder } from "../../src/grpc/id-list-decoding.js";
import { RejectedRequest, safeDeserializer } from "../../src/grpc/request-decoding.js";
import { entryLimit } from "../../src/grpc/wire-limits.js";
import { checkUserIdBytes, checkUserIds, hasNul } from "../../src/service/validation.js";

const LIMIT = 40;
// The server's precheck for BatchCheckMembership, with a small limit so it is reached.
const precheck = entryLimit(
  { repeated: [2], longest: { 1: { bytes: 64, name: "segment_id" }, 2: { bytes: 256, name: "user_ids" } } },
  LIMIT,
  "user_ids",
  "split the batch",
);
const utf8 = new TextEncoder();

/** xorshift32: the same messages on every run. */
function random(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

function varint(value: number, pad = 0): number[] {
  const out: number[] = [];
  let v = value;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  // Padding: a non-canonical encoding of the same value, which decoders must accept.
  for (let i = 0; i < pad; i++) {
    out.push(v | 0x80);
    v = 0;
  }
  out.push(v);
  return out;
}

function tag(field: number, wireType: number, pad = 0): number[] {
  return varint(field * 8 + wireType, pad);
}

function lengthDelimited(field: number, bytes: ArrayLike<number>, pad = 0): number[] {
  return [...tag(field, 2, pad), ...varint(bytes.length), ...Array.from(bytes)];
}

/** Ids the decoder must accept, and ids some layer refuses (empty, too long, NUL, not UTF-8). */
function userId(next: () => number, clean: boolean): number[] {
  const pick = Math.floor(next() * (clean ? 5 : 13));
  const len = 1 + Math.floor(next() * 30);
  const ascii = () => Array.from({ length: len }, () => 0x21 + Math.floor(next() * 94));
  switch (pick) {
    case 0:
    case 1:
      return ascii();
    case 2:
      return Array.from(utf8.encode(`ü-${"€".repeat(len % 5)}-😀-${len}`));
    case 3:
      return Array.from({ length: 256 }, (_, i) => 0x61 + (i % 26));
    case 4:
      return Array.from(utf8.encode("\uFEFFbom"));
    case 5:
      return [];
    case 6:
      return Array.from({ length: 257 }, () => 0x62);
    case 7:
      return [0x61, 0, 0x62];
    case 8:
      return [0x61, 0xff, 0x62];
    case 9:
      return [0xed, 0xa0, 0x80]; // an encoded surrogate
    case 10:
      return [0xc0, 0x80]; // overlong NUL
    case 11:
      return [0xac, 0x61]; // starts with a continuation byte: completes a cut neighbour when joined
    default:
      return [0xe2, 0x82]; // cut multi-byte sequence
  }
}

/** An unknown field (numbered from `first`) of any wire type, well formed when `clean`. */
function unknownField(next: () => number, clean: boolean, first = 3): number[] {
  const field = first + Math.floor(next() * 3000);
  switch (Math.floor(next() * (clean ? 4 : 9))) {
    case 0:
      return [...tag(field, 0), ...varint(Math.floor(next() * 2 ** 40))];
    case 1:
      return [...tag(field, 1), ...Array.from({ length: 8 }, () => Math.floor(next() * 256))];
    case 2:
      return lengthDelimited(
        field,
        Array.from({ length: Math.floor(next() * 20) }, () => Math.floor(next() * 256)),
      );
    case 3:
      return [...tag(field, 5), 1, 2, 3, 4];
    case 4:
      return [...tag(field, 3), ...tag(field + 1, 0), 7, ...tag(field, 4)]; // a group
    case 5:
      return [...tag(field, 4)]; // a stray end-group
    case 6:
      return [...tag(field, 6 + Math.floor(next() * 2)), 0];
    case 7:
      return [...tag(field, 0), ...Array.from({ length: 11 }, () => 0xff), 1]; // an over-long varint
    default:
      return [...tag(0, 2), 0]; // field number 0
  }
}

/** A random message; `clean` ones must take the byte path, the others hold bad parts now and then. */
function message(next: () => number, clean: boolean): Uint8Array {
  const out: number[] = [];
  const parts = Math.floor(next() * (clean ? LIMIT : LIMIT + 10));
  // Per message, how often a part is bad: many messages have one bad part, some have none.
  const dirt = clean ? 0 : next() * 0.15;
  for (let i = 0; i < parts; i++) {
    const r = next();
    const bad = next() < dirt;
    const pad = next() < 0.1 ? 1 + Math.floor(next() * 3) : 0;
    if (bad && r < 0.1) out.push(...tag(1 + Math.floor(next() * 2), next() < 0.5 ? 0 : 5), 1, 2, 3, 4, 5);
    else if (bad && r < 0.2) out.push(...lengthDelimited(1, [0xff, 0x61]));
    else if (r < 0.08) out.push(...lengthDelimited(1, utf8.encode(`seg-${i}-é`), pad));
    else if (r < 0.15) out.push(...unknownField(next, !bad));
    else out.push(...lengthDelimited(2, userId(next, !bad), pad));
  }
  const bytes = Uint8Array.from(out);
  if (clean) return bytes;
  const mangle = next();
  if (mangle < 0.15) return bytes.subarray(0, Math.floor(next() * bytes.length));
  if (mangle < 0.25 && bytes.length > 0) bytes[Math.floor(next() * bytes.length)] = Math.floor(next() * 256);
  return bytes;
}

/** `count` well-formed user_ids fields ("u0", "u1", …). */
function ids(count: number): number[] {
  return Array.from({ length: count }, (_, i) => lengthDelimited(2, utf8.encode(`u${i}`))).flat();
}

/** What `decode` returns, or undefined when it refuses by throwing a DomainError. */
function accepted<T>(decode: () => T): T | undefined {
  try {
    return decode();
  } catch (error: unknown) {
    if (error instanceof DomainError) return undefined;
    throw error;
  }
}

/** What a call would see: the refusal (field and message) or the request's content. */
function outcome(decoded: unknown): unknown {
  try {
    if (decoded instanceof RejectedRequest) throw decoded.error;
    if (decoded instanceof IdListBytes) {
      checkUserIdBytes(decoded.ids, LIMIT);
      return { segmentId: decoded.segmentId, userIds: [...decoded.ids] };
    }
    const request = decoded as { segmentId: string; userIds: string[] };
    checkUserIds(request.userIds, LIMIT);
    return { segmentId: request.segmentId, userIds: request.userIds };
  } catch (error: unknown) {
    if (!(error instanceof DomainError)) throw error;
    return { refused: error.message, reason: error.reason };
  }
}

function buffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

// The decoders enforce the precheck above themselves (over LIMIT ids refused; a segment id over
// 64 bytes declined, left to the precheck): the fast path must refuse exactly what it refuses.
const LIMITS = { maxIds: LIMIT, advice: "split the batch", maxSegmentIdBytes: 64 };
const SHAPES = [
  { schema: BatchCheckMembershipRequestSchema, decode: idListDecoder("segments.v1.BatchCheckMembershipRequest", LIMITS) },
  { schema: AddMembersRequestSchema, decode: idListDecoder("segments.v1.AddMembersRequest", LIMITS) },
  { schema: RemoveMembersRequestSchema, decode: idListDecoder("segments.v1.RemoveMembersRequest", LIMITS) },
];

describe.each(SHAPES)("$schema.typeName from its wire bytes", ({ schema, decode }) => {
  const fast = safeDeserializer(schema, precheck, decode);
  const slow = safeDeserializer(schema, precheck);

  it("decodes well-formed messages (unknown fields, repeats, padded tags) as protobuf-es does", () => {
    const next = random(11);
    for (let n = 0; n < 3000; n++) {
      const bytes = message(next, true);
      const decoded = decode(bytes);
      const reference = fromBinary(schema, bytes);
      expect(decoded).toBeInstanceOf(IdListBytes);
      expect(decoded?.$typeName).toBe(schema.typeName);
      expect(decoded?.segmentId).toBe(reference.segmentId);
      expect([...(decoded?.ids ?? [])]).toEqual(reference.userIds);
      expect(decoded?.userIds).toEqual(reference.userIds);
    }
  });

  it("agrees with protobuf-es on adversarial messages: the same content or the same refusal", () => {
    const next = random(29);
    let taken = 0;
    let refused = 0;
    for (let n = 0; n < 6000; n++) {
      const bytes = message(next, false);
      // Past LIMIT ids the decoder refuses by throwing; the comparison below covers that outcome.
      const decoded = accepted(() => decode(bytes));
      if (decoded !== undefined) {
        taken++;
        const reference = fromBinary(schema, bytes);
        expect(decoded.segmentId).toBe(reference.segmentId);
        expect([...decoded.ids]).toEqual(reference.userIds);
      }
      const expected = outcome(slow(buffer(bytes)));
      if (typeof expected === "object" && expected !== null && "refused" in expected) refused++;
      expect(outcome(fast(buffer(bytes)))).toEqual(expected);
    }
    // The generator must exercise both sides.
    expect(taken).toBeGreaterThan(1000);
    expect(refused).toBeGreaterThan(1000);
  });

  it("refuses what protobuf-es refuses, with its message", () => {
    const cases = [
      Uint8Array.from([0x12, 0x05, 0x61]), // length past the end
      Uint8Array.from([0x12]), // tag without length
      Uint8Array.from([0x12, 0x80]), // truncated length varint
      Uint8Array.from([0x12, 0x02, 0xc3, 0x28]), // invalid UTF-8
      Uint8Array.from([0x0a, 0x01, 0xff, 0x12, 0x01, 0x61]), // invalid UTF-8 segment id
      Uint8Array.from([0x12, 0x02, 0xe2, 0x82, 0x12, 0x01, 0xac]), // two invalid ids that join into "€"
      Uint8Array.from([0x1e, 0x00]), // wire type 6
      Uint8Array.from([0x12, 0x00]), // empty id
      Uint8Array.from([0x12, 0x01, 0x00]), // NUL
      new Uint8Array(0), // no ids
      Uint8Array.from(ids(LIMIT + 1)), // one id too many
      Uint8Array.from([...ids(LIMIT + 1), 0x12, 0x00]), // one too many, then an empty id
      Uint8Array.from([...lengthDelimited(1, new Uint8Array(65).fill(0x61)), ...ids(1)]), // segment id over 64 bytes
      Uint8Array.from([...lengthDelimited(1, new Uint8Array(65).fill(0x61)), ...ids(LIMIT + 1)]), // both: the segment id first
      Uint8Array.from([...ids(LIMIT + 1), ...lengthDelimited(1, new Uint8Array(65).fill(0x61))]), // both: the ids first
      Uint8Array.from([...ids(3), ...lengthDelimited(2, new Uint8Array(257).fill(0x61)), ...ids(LIMIT)]), // an id over 256 bytes first
    ];
    for (const bytes of cases) {
      expect(outcome(fast(buffer(bytes)))).toEqual(outcome(slow(buffer(bytes))));
      expect(outcome(fast(buffer(bytes)))).toHaveProperty("refused");
    }
  });

  it("walks a message it accepts once: the precheck runs only on what it leaves to protobuf-es", () => {
    let prechecked = 0;
    const counted = safeDeserializer(
      schema,
      (bytes) => {
        prechecked++;
        precheck(bytes);
      },
      decode,
    );
    expect(outcome(counted(buffer(Uint8Array.from(ids(LIMIT)))))).toHaveProperty("userIds");
    expect(outcome(counted(buffer(Uint8Array.from(ids(LIMIT + 1)))))).toHaveProperty("refused");
    expect(prechecked).toBe(0);
    expect(outcome(counted(buffer(Uint8Array.from([0x12, 0x00]))))).toHaveProperty("refused");
    expect(prechecked).toBe(1);
  });

  it("keeps each request's ids when the next one is decoded", () => {
    const first = decode(Uint8Array.from(lengthDelimited(2, utf8.encode("alice"))));
    decode(Uint8Array.from(lengthDelimited(2, utf8.encode("bob"))));
    expect([...(first?.ids ?? [])]).toEqual(["alice"]);
  });
});

/** A random ImportMembersRequest (segment_id 1, mode 2, user_ids 3, text 4); `clean` ones must take the byte path. */
function importMessage(next: () => number, clean: boolean): Uint8Array {
  const out: number[] = [];
  const parts = Math.floor(next() * (clean ? LIMIT : LIMIT + 10));
  const dirt = clean ? 0 : next() * 0.15;
  for (let i = 0; i < parts; i++) {
    const r = next();
    const bad = next() < dirt;
    if (bad && r < 0.1)
      out.push(...tag(2, 2), 1, 1); // mode as a length-delimited field
    else if (bad && r < 0.2)
      out.push(...tag(2, 0), ...varint(2 ** 31 + Math.floor(next() * 1000))); // a negative int32
    else if (r < 0.06) out.push(...lengthDelimited(1, utf8.encode(`seg-${i}`)));
    else if (r < 0.12) out.push(...tag(2, 0), ...varint(Math.floor(next() * 4), next() < 0.1 ? 1 : 0));
    else if (r < 0.18)
      out.push(
        ...lengthDelimited(
          4,
          Array.from({ length: Math.floor(next() * 12) }, () => Math.floor(next() * 256)),
        ),
      );
    else if (r < 0.24) out.push(...unknownField(next, !bad, 5));
    else out.push(...lengthDelimited(3, userId(next, !bad)));
  }
  const bytes = Uint8Array.from(out);
  if (clean || next() < 0.8) return bytes;
  return bytes.subarray(0, Math.floor(next() * bytes.length));
}

describe("ImportMembersRequest from its wire bytes", () => {
  const compare = (decoded: ImportMembersBytes, bytes: Uint8Array) => {
    const reference = fromBinary(ImportMembersRequestSchema, bytes);
    expect(decoded.segmentId).toBe(reference.segmentId);
    expect(decoded.mode).toBe(reference.mode);
    expect([...decoded.ids]).toEqual(reference.userIds);
    expect(decoded.text).toEqual(reference.text);
  };

  it("decodes well-formed messages (mode, text, unknown fields, repeats) as protobuf-es does", () => {
    const next = random(47);
    for (let n = 0; n < 3000; n++) {
      const bytes = importMessage(next, true);
      const decoded = decodeImportMembers(bytes);
      expect(decoded).toBeInstanceOf(ImportMembersBytes);
      compare(decoded as ImportMembersBytes, bytes);
    }
  });

  it("on adversarial messages, decodes only what protobuf-es decodes, to the same content", () => {
    const next = random(53);
    let taken = 0;
    let declined = 0;
    for (let n = 0; n < 6000; n++) {
      const bytes = importMessage(next, false);
      const decoded = decodeImportMembers(bytes);
      if (decoded === undefined) declined++;
      else {
        taken++;
        compare(decoded, bytes);
      }
    }
    expect(taken).toBeGreaterThan(1000);
    expect(declined).toBeGreaterThan(500);
  });
});

describe("hasNul", () => {
  it("looks only within the view it is given, at every position", () => {
    const backing = new Uint8Array(64).fill(0x61);
    backing[3] = 0;
    backing[60] = 0;
    // Views of one buffer: the NULs at 3 and 60 lie outside [4, 60) and inside [0, 4) and [60, 61).
    expect(hasNul(backing.subarray(4, 60))).toBe(false);
    expect(hasNul(backing.subarray(0, 4))).toBe(true);
    expect(hasNul(backing.subarray(60, 61))).toBe(true);
    for (let at = 4; at < 60; at++) {
      const view = backing.subarray(4, 60);
      view[at - 4] = 0;
      expect(hasNul(view)).toBe(true);
      view[at - 4] = 0x61;
    }
    expect(hasNul(new Uint8Array(0))).toBe(false);
  });
});
