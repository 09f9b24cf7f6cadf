/**
 * Request bytes for the fuzzer, for any method of any generated service. A valid message is
 * built from the method's input descriptor field by field (so a new method or field is fuzzed
 * without touching this file), with ids, tokens and versions drawn from the seeded state so that
 * mutations of it reach the code behind validation; then it is sent as is, truncated,
 * bit-flipped, replaced by random bytes, given invalid UTF-8, or blown up with 150,000 ids.
 */
import { create, type DescField, type DescMessage, ScalarType, toBinary } from "@bufbuild/protobuf";
import { rng } from "../../bench/lib/dataset.js";
import { varint } from "./raw-call.js";

/** Real values from the seeded service: what makes a random message land on real state. */
export interface Pools {
  segmentIds: string[];
  userIds: string[];
  /** Page tokens the service issued. */
  tokens: string[];
  versions: bigint[];
}

/** One request as sent, with a description to print when it exposes a fault. */
export interface FuzzMessage {
  bytes: Buffer;
  /** How it was made: "valid", "truncated at 12", "3 bit flips", … */
  how: string;
}

const WIRE_LENGTH_DELIMITED = 2;
/** Ids in a "huge" message: over the 100,000 per-call limit, 1–2 MB on the wire. */
const HUGE_IDS = 150_000;
/** A string as large as a method without member lists accepts (its requests are capped at 1 MiB). */
const BIG_STRING_BYTES = 1_000_000;
/** A giant string: large, but well under the 64 MiB message limit (and the ~30 MB the brief allows). */
const GIANT_BYTES = 24 * 1024 * 1024;
const YEAR_10000 = 253_402_300_800n;
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

/** A seeded source of choices. */
export class Dice {
  private readonly next: () => number;
  /**
   * How often a field gets a hostile value rather than a plausible one, for the message being
   * built: 0 makes requests that mostly pass validation and reach the store.
   */
  weirdness = 0.15;
  constructor(seed: number) {
    this.next = rng(seed);
  }
  /** 0 ≤ n < below. */
  int(below: number): number {
    return Math.floor(this.next() * below);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  /** True with probability `weirdness`. */
  weird(): boolean {
    return this.chance(this.weirdness);
  }
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error("pick from an empty list");
    return items[this.int(items.length)] as T;
  }
}

/** Strings that have broken services before: empty, over 256 bytes, NUL, lone surrogates, injections. */
const WEIRD_STRINGS: readonly string[] = [
  "",
  " ",
  "x".repeat(256),
  "x".repeat(257),
  "é".repeat(128),
  `${"é".repeat(128)}a`,
  "💥".repeat(64),
  "a\u0000b",
  "\u0000",
  "\ud800",
  "\udfff\ud800",
  "' OR 1=1 --",
  "'; DROP TABLE users; --",
  "%s%n%x",
  "\\x00\\",
  "0190b6a0-0000-7000-8000-000000000000",
  "00000000-0000-0000-0000-000000000000",
  "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF",
  "\n\r\t",
  "null",
  "__proto__",
  "constructor",
  "y".repeat(10_000),
];

const SQLS: readonly string[] = [
  "SELECT user_id FROM events",
  "SELECT user_id FROM events WHERE name = 'x'",
  "SELECT 1",
  "COMMIT; DROP TABLE users",
  "SELECT pg_sleep(100)",
  "select user_id from generate_series(1, 100000000) user_id",
  "",
  "(((((",
];
const CRONS: readonly string[] = ["0 * * * *", "*/5 * * * *", "* * * * * *", "61 * * * *", "", "0 0 31 2 *", "@hourly"];
const TIME_ZONES: readonly string[] = ["UTC", "Europe/Paris", "America/New_York", "Mars/Olympus", "", "+99:00", "Etc/GMT+14"];
/** Fields a plausible request always sets (the service requires them). */
const REQUIRED = /(segment_id|user_ids?|^name|^type|^mode)$/;
const MASK_PATHS: readonly string[] = ["name", "description", "type", "query", "schedule", "id", "status", "member_count", "", "name.x"];

/** A request for a method whose input is `schema`, mutated one way or another (or not, when `mutate` is false). */
export function fuzzMessage(schema: DescMessage, dice: Dice, pools: Pools, mutate = true): FuzzMessage {
  dice.weirdness = dice.pick([0, 0, 0.03, 0.15, 0.4]);
  if (!mutate) return { bytes: validBytes(schema, dice, pools), how: `valid (weirdness ${dice.weirdness})` };
  const roll = dice.int(100);
  if (roll < 3) return { bytes: randomBytes(dice, dice.int(64)), how: "random bytes (short)" };
  if (roll < 6) return { bytes: randomBytes(dice, dice.int(4096)), how: "random bytes" };
  const valid = validBytes(schema, dice, pools);
  if (roll < 40) return { bytes: valid, how: `valid (weirdness ${dice.weirdness})` };
  if (roll < 52) {
    const at = valid.length === 0 ? 0 : dice.int(valid.length);
    return { bytes: valid.subarray(0, at), how: `truncated at ${at} of ${valid.length}` };
  }
  if (roll < 66) return bitFlipped(valid, dice);
  if (roll < 76) return withRawString(schema, valid, dice);
  if (roll < 80) return huge(schema, valid, dice);
  if (roll < 81 && dice.chance(0.2)) return giant(schema, valid);
  return { bytes: valid, how: "valid" };
}

/** A well-formed encoding of a random message of `schema`. */
export function validBytes(schema: DescMessage, dice: Dice, pools: Pools): Buffer {
  const bytes = toBinary(schema, create(schema, messageInit(schema, dice, pools, 0)));
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A plain init object for `schema`, filled field by field (oneofs: one member or none). */
export function messageInit(schema: DescMessage, dice: Dice, pools: Pools, depth: number): Record<string, unknown> {
  const special = wellKnown(schema, dice);
  if (special !== undefined) return special;
  if (schema.typeName === "segments.v1.Filter" && dice.chance(0.15) && dice.weirdness > 0) return deepNot(dice.int(81) + 40, dice);
  const init: Record<string, unknown> = {};
  if (depth > 5) return init;
  for (const member of schema.members) {
    if (member.kind === "oneof") {
      if (dice.chance(0.2)) continue;
      const field = dice.pick(member.fields);
      init[member.localName] = { case: field.localName, value: fieldValue(field, dice, pools, depth) };
    } else if (dice.chance(0.75) || (dice.weirdness === 0 && REQUIRED.test(member.name))) {
      init[member.localName] = fieldValue(member, dice, pools, depth);
    }
  }
  return init;
}

/** Filter.not nested `depth` deep around an event condition. */
function deepNot(depth: number, dice: Dice): Record<string, unknown> {
  let filter: Record<string, unknown> = {
    kind: { case: "event", value: { name: dice.pick(["signup", "", "x".repeat(300)]), minCount: dice.pick([0, 1, 4294967295]) } },
  };
  for (let i = 0; i < depth; i++) filter = { kind: { case: "not", value: filter } };
  return filter;
}

/** Timestamps, Durations and field masks with the values that break arithmetic. */
function wellKnown(schema: DescMessage, dice: Dice): Record<string, unknown> | undefined {
  const nanos = () => (dice.weird() ? dice.pick([1_000_000_000, -1, 2_147_483_647, -2_147_483_648]) : dice.pick([0, 1, 999_999_999]));
  const plausible = !dice.weird();
  switch (schema.typeName) {
    case "google.protobuf.Timestamp":
      if (plausible) return { seconds: BigInt(1_700_000_000 + dice.int(100_000_000)), nanos: nanos() };
      return {
        seconds: dice.pick([0n, 1_700_000_000n, YEAR_10000, YEAR_10000 * 10n, -62_135_596_801n, INT64_MAX, -INT64_MAX - 1n, -1n]),
        nanos: nanos(),
      };
    case "google.protobuf.Duration":
      if (plausible) return { seconds: BigInt(dice.int(90 * 86_400)), nanos: nanos() };
      return { seconds: dice.pick([0n, 1n, 86_400n, 1_000_000_000_000n, -1_000_000_000_000n, INT64_MAX, -INT64_MAX - 1n]), nanos: nanos() };
    case "google.protobuf.FieldMask":
      return { paths: Array.from({ length: dice.int(4) }, () => dice.pick(MASK_PATHS)) };
    default:
      return undefined;
  }
}

function fieldValue(field: DescField, dice: Dice, pools: Pools, depth: number): unknown {
  switch (field.fieldKind) {
    case "scalar":
      return scalar(field.scalar, field.name, dice, pools);
    case "enum":
      return enumValue(
        field.enum.values.map((v) => v.number),
        dice,
      );
    case "message":
      return messageInit(field.message, dice, pools, depth + 1);
    case "list": {
      const length = dice.weird() ? dice.pick([0, 100]) : dice.int(6) + 1;
      return Array.from({ length }, () => {
        if (field.listKind === "scalar") return scalar(field.scalar, field.name, dice, pools);
        if (field.listKind === "enum")
          return enumValue(
            field.enum.values.map((v) => v.number),
            dice,
          );
        return messageInit(field.message, dice, pools, depth + 1);
      });
    }
    case "map": {
      const map: Record<string, unknown> = {};
      for (let i = dice.int(4); i > 0; i--) {
        const key = String(scalar(field.mapKey, field.name, dice, pools));
        if (field.mapKind === "scalar") map[key] = scalar(field.scalar, "version", dice, pools);
        else if (field.mapKind === "enum")
          map[key] = enumValue(
            field.enum.values.map((v) => v.number),
            dice,
          );
        else map[key] = messageInit(field.message, dice, pools, depth + 1);
      }
      return map;
    }
  }
}

function enumValue(known: readonly number[], dice: Dice): number {
  return dice.weird() ? dice.pick([99, -1, 2_147_483_647, -2_147_483_648]) : dice.pick(known);
}

/** A value of a scalar field, chosen by its name where the name says what it holds. */
function scalar(type: ScalarType, name: string, dice: Dice, pools: Pools): unknown {
  switch (type) {
    case ScalarType.STRING:
      return stringFor(name, dice, pools);
    case ScalarType.BYTES:
      return bytesFor(dice, pools);
    case ScalarType.BOOL:
      return dice.chance(0.5);
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return dice.pick([0, -0, 1.5, -1, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1e308, 5e-324]);
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      if (!dice.weird()) return dice.pick([0, 1, 2, 10, 50, 1_000]);
      return dice.pick([10_000, 100_000, -1, 2_147_483_647, -2_147_483_648, dice.int(2_000)]);
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return dice.weird() ? dice.pick([4_294_967_295, 2_147_483_648]) : dice.pick([0, 1, 7, 1_000, dice.int(100)]);
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      if (!dice.weird() && pools.versions.length > 0) return dice.pick(pools.versions);
      return dice.pick([0n, 1n, 2n, 3n, 2n ** 53n + 1n, 2n ** 32n, INT64_MAX, UINT64_MAX, BigInt(dice.int(20))]);
    default:
      return dice.pick([0n, 1n, -1n, INT64_MAX, -INT64_MAX - 1n, YEAR_10000]);
  }
}

function stringFor(name: string, dice: Dice, pools: Pools): string {
  const weird = dice.weird();
  if (name.endsWith("segment_id") || name.endsWith("segment_ids") || name === "from_versions") {
    if (weird) return dice.pick(WEIRD_STRINGS);
    return pools.segmentIds.length === 0 ? "" : dice.pick(pools.segmentIds);
  }
  if (name.endsWith("user_id") || name.endsWith("user_ids")) {
    if (weird) return dice.pick(WEIRD_STRINGS);
    return dice.chance(0.6) && pools.userIds.length > 0 ? dice.pick(pools.userIds) : `fz_${dice.int(5_000)}`;
  }
  if (name.endsWith("token")) return pageToken(dice, pools);
  if (weird) return dice.pick(WEIRD_STRINGS);
  switch (name) {
    case "sql":
      return dice.pick(SQLS);
    case "cron":
      return dice.pick(CRONS);
    case "time_zone":
      return dice.pick(TIME_ZONES);
    case "paths":
      return dice.pick(MASK_PATHS);
    case "name":
    case "name_contains":
      return `fuzz ${dice.int(12)}`;
    case "id":
      return "";
    default:
      return dice.pick(["signup", "plan", "country", "a", "x".repeat(dice.int(300))]);
  }
}

/** Newline-separated ids, with CRLF, blank lines, NUL and invalid UTF-8 thrown in. */
function bytesFor(dice: Dice, pools: Pools): Uint8Array {
  const parts: Buffer[] = [];
  for (let i = dice.int(8); i > 0; i--) {
    const roll = dice.weird() ? dice.int(4) : 4;
    if (roll === 0) parts.push(Buffer.from([0x66, 0xff, 0xfe, 0xc0, 0x80]));
    else if (roll === 1) parts.push(Buffer.from("a\u0000b"));
    else if (roll === 2) parts.push(Buffer.from("x".repeat(300)));
    else if (roll === 3) parts.push(Buffer.alloc(0));
    else parts.push(Buffer.from(pools.userIds.length > 0 && dice.chance(0.5) ? dice.pick(pools.userIds) : `fz_${dice.int(5_000)}`));
  }
  return Buffer.from(parts.map((p) => p.toString("latin1")).join(dice.chance(0.8) ? "\n" : "\r\n"), "latin1");
}

/** A real token, an edited real token (its numbers made extreme), random base64, or junk. */
export function pageToken(dice: Dice, pools: Pools): string {
  if (!dice.weird()) return dice.chance(0.5) || pools.tokens.length === 0 ? "" : dice.pick(pools.tokens);
  const roll = dice.int(10);
  if (roll < 3 && pools.tokens.length > 0) return dice.pick(pools.tokens);
  if (roll < 7 && pools.tokens.length > 0) return editedToken(dice.pick(pools.tokens), dice);
  if (roll < 9) return randomBytes(dice, dice.int(64)).toString(dice.chance(0.5) ? "base64" : "base64url");
  return dice.pick(["", "=", "!!!", "e30", "bnVsbA", "W10", "eyJhZnRlciI6MWUzMDh9", "x".repeat(5_000)]);
}

/** A real token with one JSON value replaced (a huge, negative, fractional or wrong-typed one). */
function editedToken(token: string, dice: Dice): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    return `${token.slice(0, -1)}A`;
  }
  const replacement = dice.pick<unknown>([1e308, -1, 2 ** 53 + 2, 0.5, "x", null, [], {}, -1e308, "0190b6a0"]);
  if (parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)) {
    const object = parsed as Record<string, unknown>;
    const keys = Object.keys(object);
    if (keys.length > 0) object[dice.pick(keys)] = replacement;
    if (dice.chance(0.2)) object.extra = replacement;
  } else {
    parsed = replacement;
  }
  return Buffer.from(JSON.stringify(parsed), "utf8").toString("base64url");
}

function randomBytes(dice: Dice, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = dice.int(256);
  return out;
}

function bitFlipped(valid: Buffer, dice: Dice): FuzzMessage {
  const out = Buffer.from(valid);
  if (out.length === 0) return { bytes: Buffer.from([dice.int(256)]), how: "one random byte (empty valid message)" };
  const flips = dice.int(8) + 1;
  for (let i = 0; i < flips; i++) {
    const at = dice.int(out.length);
    out[at] = (out[at] as number) ^ (1 << dice.int(8));
  }
  return { bytes: out, how: `${flips} bit flips of a ${valid.length}-byte valid message` };
}

/** String (and bytes) fields of `schema` by number, singular or repeated. */
function stringFields(schema: DescMessage, repeatedOnly: boolean): DescField[] {
  return schema.fields.filter((f) => {
    const text = (t: ScalarType) => t === ScalarType.STRING || t === ScalarType.BYTES;
    if (f.fieldKind === "list") return f.listKind === "scalar" && text(f.scalar);
    return !repeatedOnly && f.fieldKind === "scalar" && text(f.scalar);
  });
}

/** Appends one length-delimited field: the last value wins for a singular field, one more entry for a list. */
function appendField(base: Buffer, fieldNo: number, value: Buffer): Buffer {
  return Buffer.concat([base, varint(fieldNo * 8 + WIRE_LENGTH_DELIMITED), varint(value.length), value]);
}

const RAW_STRINGS: readonly (readonly number[])[] = [
  [0x66, 0xff, 0xfe],
  [0xc0, 0x80],
  [0xed, 0xa0, 0x80],
  [0xf4, 0x90, 0x80, 0x80],
  [0x61, 0x00, 0x62],
  [0x00],
  [0xe2, 0x82],
];

/** A valid message with invalid UTF-8 (or NUL) put into one of its string fields on the wire. */
function withRawString(schema: DescMessage, valid: Buffer, dice: Dice): FuzzMessage {
  const fields = stringFields(schema, false);
  if (fields.length === 0) return bitFlipped(valid, dice);
  const field = dice.pick(fields);
  const raw = Buffer.from(dice.pick(RAW_STRINGS));
  const value = dice.chance(0.5) ? Buffer.concat([Buffer.from("fz_"), raw]) : raw;
  return { bytes: appendField(valid, field.number, value), how: `${field.name} = raw ${value.toString("hex")} (invalid UTF-8 / NUL)` };
}

/**
 * A valid message plus 150,000 short ids in one of its repeated string fields, or else a string
 * just under the 1 MiB cap of methods without member lists (so it is decoded and validated).
 */
function huge(schema: DescMessage, valid: Buffer, dice: Dice): FuzzMessage {
  const lists = stringFields(schema, true);
  if (lists.length === 0) {
    const fields = stringFields(schema, false);
    if (fields.length === 0) return bitFlipped(valid, dice);
    const field = dice.pick(fields);
    return {
      bytes: appendField(valid, field.number, Buffer.alloc(BIG_STRING_BYTES, 0x61)),
      how: `${field.name} = ${BIG_STRING_BYTES}-byte string`,
    };
  }
  const field = dice.pick(lists);
  // One buffer written in place: 150,000 small Buffers would leave garbage whose collection
  // lands in the next call's window and is charged to the server.
  const tag = varint(field.number * 8 + WIRE_LENGTH_DELIMITED);
  const out = Buffer.alloc(valid.length + HUGE_IDS * (tag.length + 1 + `h${HUGE_IDS}`.length));
  let at = valid.copy(out, 0);
  for (let i = 0; i < HUGE_IDS; i++) {
    at += tag.copy(out, at);
    const length = out.write(`h${i}`, at + 1, "latin1");
    out[at] = length;
    at += 1 + length;
  }
  return { bytes: out.subarray(0, at), how: `${field.name} += ${HUGE_IDS} short ids` };
}

/** A valid message with a 24 MiB string in one of its string fields. */
function giant(schema: DescMessage, valid: Buffer): FuzzMessage {
  const field = stringFields(schema, false)[0];
  if (field === undefined) return { bytes: valid, how: "valid" };
  return { bytes: appendField(valid, field.number, Buffer.alloc(GIANT_BYTES, 0x62)), how: `${field.name} = ${GIANT_BYTES}-byte string` };
}
