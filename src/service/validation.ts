/**
 * Input rules with their limits, each failure naming the field and what to fix. The limits are
 * repeated in the proto comments, which are the user-facing documentation.
 *
 * U+0000 is refused in every string we keep or compare: Postgres text cannot hold it, so storing
 * it would fail deep in the write path, and accepting it only on reads would answer for ids that
 * can never exist.
 */
import { isUtf8 } from "node:buffer";
import cron from "node-cron";
import { InvalidArgumentError } from "../errors.js";
import type { QueryDefinition, Schedule } from "../model.js";
import { SQL_MAX_CHARS } from "../query/query-limits.js";
import type { UserIdChunk } from "../store/user-id-chunk.js";
import { isSegmentId } from "./ids.js";

export const NAME_MAX_CHARS = 200;
export const DESCRIPTION_MAX_CHARS = 2_000;
export const USER_ID_MAX_BYTES = 256;

/** The trimmed name, or InvalidArgumentError when empty, too long or holding U+0000. */
export function validName(name: string, field = "name"): string {
  const trimmed = name.trim();
  if (trimmed.length === 0) throw new InvalidArgumentError(field, "must not be empty");
  checkText(trimmed, field, NAME_MAX_CHARS);
  return trimmed;
}

/** The description, or InvalidArgumentError when too long or holding U+0000. */
export function validDescription(description: string, field = "description"): string {
  checkText(description, field, DESCRIPTION_MAX_CHARS);
  return description;
}

/** Checks free text: at most `maxChars` characters (Unicode code points) and no U+0000. */
export function checkText(text: string, field: string, maxChars: number): void {
  // A code point is one or two UTF-16 units, so only lengths in between need counting.
  if (text.length > maxChars && (text.length > 2 * maxChars || [...text].length > maxChars)) {
    throw new InvalidArgumentError(field, `must be at most ${maxChars} characters`);
  }
  checkNoNul(text, field);
}

/** Refuses U+0000, which Postgres text cannot hold. */
function checkNoNul(text: string, field: string): void {
  if (text.includes("\u0000")) throw new InvalidArgumentError(field, "must not contain U+0000 (NUL)");
}

/** Checks the shape of a segment id (existence is the caller's business). */
export function checkSegmentId(id: string, field = "segment_id"): void {
  if (id === "") throw new InvalidArgumentError(field, "is required");
  if (!isSegmentId(id)) throw new InvalidArgumentError(field, `${JSON.stringify(id.slice(0, 64))} is not a segment id (a UUID)`);
}

/** Most segments one hot-path call may name per list. */
export const MAX_SEGMENTS_PER_CHECK = 100;

/** Checks a list of segment ids: `min` to 100 entries (callers check each id as they use it). */
export function checkSegmentList(ids: readonly string[], field: string, min: number): void {
  if (ids.length < min) throw new InvalidArgumentError(field, "must name at least one segment");
  if (ids.length > MAX_SEGMENTS_PER_CHECK) {
    throw new InvalidArgumentError(field, `${ids.length} segments is over the limit of ${MAX_SEGMENTS_PER_CHECK} per call`);
  }
}

/** Checks one external user id: 1 to 256 bytes of UTF-8. */
export function checkUserId(id: string, field = "user_id"): void {
  if (id.length === 0) throw new InvalidArgumentError(field, "must not be empty");
  // Each UTF-16 unit is at most 3 UTF-8 bytes, so short strings skip the exact count.
  if (id.length * 3 > USER_ID_MAX_BYTES && Buffer.byteLength(id, "utf8") > USER_ID_MAX_BYTES) {
    throw new InvalidArgumentError(field, `must be at most ${USER_ID_MAX_BYTES} bytes of UTF-8`);
  }
  checkNoNul(id, field);
}

/** Checks a list of user ids: non-empty, within the per-call limit, each well formed. */
export function checkUserIds(ids: readonly string[], limit: number, field = "user_ids"): void {
  checkUserIdCount(ids.length, limit, field);
  for (let i = 0; i < ids.length; i++) checkUserId(ids[i] as string, `${field}[${i}]`);
}

/**
 * checkUserIds for ids given as UTF-8 byte ranges (the wire decoder's): the same refusals, with
 * the same fields and messages, without making a string per id.
 */
export function checkUserIdBytes(ids: UserIdChunk, limit: number, field = "user_ids"): void {
  const count = ids.length;
  checkUserIdCount(count, limit, field);
  const { bytes, ends } = ids;
  // The wire decoder only hands over UTF-8; anything else would answer for ids no one can have.
  if (!isUtf8(bytes)) throw new InvalidArgumentError(field, "must be UTF-8");
  // NUL, or an id out of bounds, is rare: find which id it is only when there is one.
  let bad = hasNul(bytes);
  for (let i = 0, start = 0; i < count && !bad; i++) {
    const end = ends[i] ?? 0;
    bad = end - start <= 0 || end - start > USER_ID_MAX_BYTES;
    start = end;
  }
  if (bad) checkUserIds([...ids], limit, field);
}

/**
 * Whether `bytes` holds a NUL byte. Through Buffer's indexOf (memchr): Uint8Array's own indexOf
 * took 3.7 µs for 12 KB of ids here (a 1,000-id batch), Buffer's 0.1–0.3 µs.
 */
export function hasNul(bytes: Uint8Array): boolean {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).indexOf(0) >= 0;
}

function checkUserIdCount(count: number, limit: number, field: string): void {
  if (count === 0) throw new InvalidArgumentError(field, "must contain at least one user id");
  if (count > limit) {
    throw new InvalidArgumentError(field, `${count} ids is over the limit of ${limit} per call; split the list or use ImportMembers`);
  }
}

/** Checks a schedule: a valid cron expression and an IANA time zone. */
export function checkSchedule(schedule: Schedule, field = "schedule"): void {
  checkNoNul(schedule.cron, `${field}.cron`);
  checkNoNul(schedule.timeZone, `${field}.time_zone`);
  if (!cron.validate(schedule.cron)) {
    throw new InvalidArgumentError(
      `${field}.cron`,
      `${JSON.stringify(schedule.cron)} is not a valid cron expression (5 fields, or 6 with seconds)`,
    );
  }
  if (!isTimeZone(schedule.timeZone)) {
    throw new InvalidArgumentError(
      `${field}.time_zone`,
      `${JSON.stringify(schedule.timeZone)} is not an IANA time zone (e.g. "Europe/Paris", "UTC")`,
    );
  }
}

/** Checks that a query is present and not absurdly large; its SQL is vetted when it runs. */
export function checkQuery(query: QueryDefinition, field = "query"): void {
  if ("sql" in query) {
    if (query.sql.trim() === "") throw new InvalidArgumentError(`${field}.sql`, "must not be empty");
    checkText(query.sql, `${field}.sql`, SQL_MAX_CHARS);
  }
}

function isTimeZone(zone: string): boolean {
  if (zone === "") return false;
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}
