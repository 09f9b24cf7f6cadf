/**
 * LoadEvents input: NDJSON or CSV text, one event per line, arriving in chunks that may split a
 * line (or a UTF-8 sequence). Bad lines are counted and the first 100 kept with their 1-based line
 * number; good ones come out as rows ready for the events table.
 */
import { InvalidArgumentError } from "../errors.js";
import type { EventRow } from "../store/events-store.js";
import { INVALID_LINES_KEPT, type InvalidEntry } from "./import-parser.js";
import { USER_ID_MAX_BYTES } from "./validation.js";

export type EventFormat = "ndjson" | "csv";

export const EVENT_NAME_MAX_CHARS = 200;
const COLUMNS = ["user_id", "name", "ts", "properties"] as const;
// An offset is required: a zoneless time would depend on the session's TimeZone.
const ISO_8601 = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}(?::?\d{2})?)$/i;
const LF = 0x0a;
/** A longer line is not an event: refusing it keeps a newline-less upload from growing without bound. */
const MAX_LINE_BYTES = 1 << 20;
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Accumulates a load's lines; holds at most one partial line between chunks. */
export class EventParser {
  private line = 0;
  private pending: Uint8Array = new Uint8Array(0);
  /** CSV: the column order, from a header line or the default. */
  private columns: readonly string[] | undefined;
  rejected = 0;
  readonly rejectedLines: InvalidEntry[] = [];

  constructor(private readonly format: EventFormat) {}

  /** The valid rows among the complete lines of `text`. */
  push(text: Uint8Array): EventRow[] {
    const rows: EventRow[] = [];
    const bytes = this.pending.byteLength === 0 ? text : concat(this.pending, text);
    let start = 0;
    for (let lf = bytes.indexOf(LF); lf >= 0; lf = bytes.indexOf(LF, start)) {
      this.acceptLine(bytes.subarray(start, lf), rows);
      start = lf + 1;
    }
    // Copy the tail: the message buffer it points into is not ours to keep.
    this.pending = bytes.slice(start);
    if (this.pending.byteLength > MAX_LINE_BYTES) {
      throw new InvalidArgumentError("text", `line ${this.line + 1} is longer than ${MAX_LINE_BYTES} bytes; one event per line`);
    }
    return rows;
  }

  /** The valid row of a final line without a newline, if any. */
  finish(): EventRow[] {
    const rows: EventRow[] = [];
    if (this.pending.byteLength > 0) this.acceptLine(this.pending, rows);
    this.pending = new Uint8Array(0);
    return rows;
  }

  private acceptLine(raw: Uint8Array, rows: EventRow[]): void {
    this.line++;
    const bytes = raw.byteLength > 0 && raw[raw.byteLength - 1] === 0x0d ? raw.subarray(0, raw.byteLength - 1) : raw;
    let text: string;
    try {
      text = utf8.decode(bytes);
    } catch {
      this.reject("not valid UTF-8");
      return;
    }
    if (text.trim() === "") return;
    const fields = this.format === "ndjson" ? fromJson(text) : this.fromCsv(text);
    if (fields === undefined) return;
    if (typeof fields === "string") {
      this.reject(fields);
      return;
    }
    const row = validate(fields);
    if (typeof row === "string") this.reject(row);
    else rows.push(row);
  }

  /** Fields of a CSV line; the first line may be a header naming the columns. */
  private fromCsv(text: string): Record<string, unknown> | string | undefined {
    const cells = splitCsv(text);
    if (typeof cells === "string") return cells;
    if (this.columns === undefined) {
      this.columns = COLUMNS;
      if (cells.includes("user_id")) {
        const unknown = cells.find((c) => !(COLUMNS as readonly string[]).includes(c));
        if (unknown !== undefined) return `unknown column ${JSON.stringify(unknown)} in the header (expected ${COLUMNS.join(", ")})`;
        this.columns = cells;
        return undefined;
      }
    }
    if (cells.length > this.columns.length) return `${cells.length} fields; expected at most ${this.columns.length}`;
    const fields: Record<string, unknown> = {};
    this.columns.forEach((column, i) => {
      if (cells[i] !== undefined) fields[column] = cells[i];
    });
    if (typeof fields.properties === "string") {
      if (fields.properties === "") delete fields.properties;
      else {
        try {
          fields.properties = JSON.parse(fields.properties);
        } catch {
          return "properties is not valid JSON";
        }
      }
    }
    return fields;
  }

  private reject(reason: string): void {
    this.rejected++;
    if (this.rejectedLines.length < INVALID_LINES_KEPT) this.rejectedLines.push({ line: this.line, reason });
  }
}

function fromJson(text: string): Record<string, unknown> | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return "not valid JSON";
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return "not a JSON object";
  return value as Record<string, unknown>;
}

/** Checks one event's fields; returns the row, or why it is rejected. */
export function validate(fields: Record<string, unknown>): EventRow | string {
  const { user_id: userId, name, ts } = fields;
  const properties = fields.properties ?? {};
  if (typeof userId !== "string" || userId === "") return "user_id is missing or empty";
  // UTF-8 takes at most 3 bytes per UTF-16 unit: only a long string needs counting.
  if (userId.length * 3 > USER_ID_MAX_BYTES && Buffer.byteLength(userId) > USER_ID_MAX_BYTES)
    return `user_id is longer than ${USER_ID_MAX_BYTES} bytes`;
  if (userId.includes("\0")) return "user_id contains U+0000";
  if (typeof name !== "string" || name === "") return "name is missing or empty";
  // A string has at least as many UTF-16 units as characters: only a long one needs counting.
  if (name.length > EVENT_NAME_MAX_CHARS && [...name].length > EVENT_NAME_MAX_CHARS)
    return `name is longer than ${EVENT_NAME_MAX_CHARS} characters`;
  if (name.includes("\0")) return "name contains U+0000";
  if (typeof ts !== "string") return "ts is missing (an ISO-8601 time with an offset, e.g. 2026-01-31T12:00:00Z)";
  const normalized = isoTime(ts);
  if (normalized === undefined) return `ts ${JSON.stringify(ts.slice(0, 40))} is not an ISO-8601 time with an offset`;
  if (typeof properties !== "object" || properties === null || Array.isArray(properties)) return "properties is not a JSON object";
  const json = JSON.stringify(properties);
  // jsonb refuses U+0000 in strings.
  if (json.includes("\\u0000")) return "properties contains U+0000";
  return { userId, name, ts: normalized, properties: json };
}

/** `ts` as ISO-8601 UTC (millisecond precision), or undefined when it is not a real time. */
function isoTime(ts: string): string | undefined {
  const canonical = canonicalUtc(ts);
  if (canonical !== undefined) return canonical;
  const parts = ISO_8601.exec(ts);
  if (parts === null) return undefined;
  const [year, month, day, hour, minute, second] = parts.slice(1, 7).map((p) => Number(p ?? 0)) as number[];
  const calendar = new Date(Date.UTC(year ?? 0, (month ?? 1) - 1, day ?? 1));
  if (calendar.getUTCMonth() !== (month ?? 1) - 1 || (hour ?? 0) > 23 || (minute ?? 0) > 59 || (second ?? 0) > 59) return undefined;
  const time = new Date(ts.replace(" ", "T"));
  return Number.isNaN(time.getTime()) ? undefined : time.toISOString();
}

/** Where the digits of `YYYY-MM-DDTHH:MM:SS` are. */
const DIGITS = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18];
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * isoTime's fast path, for the form nearly every producer writes (`Date.toISOString()`):
 * `YYYY-MM-DDTHH:MM:SS.sssZ` comes back as it is, `YYYY-MM-DDTHH:MM:SSZ` with `.000`. Anything
 * else, and any out-of-range field, is left to the general path (undefined here).
 */
function canonicalUtc(ts: string): string | undefined {
  const length = ts.length;
  if (length !== 24 && length !== 20) return undefined;
  if (ts.charCodeAt(length - 1) !== 0x5a /* Z */ || ts[4] !== "-" || ts[7] !== "-" || ts[10] !== "T" || ts[13] !== ":" || ts[16] !== ":")
    return undefined;
  for (const at of DIGITS) if (!isDigit(ts.charCodeAt(at))) return undefined;
  if (length === 24 && (ts[19] !== "." || !isDigit(ts.charCodeAt(20)) || !isDigit(ts.charCodeAt(21)) || !isDigit(ts.charCodeAt(22))))
    return undefined;
  const year = number(ts, 0, 4);
  const month = number(ts, 5, 2);
  const day = number(ts, 8, 2);
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const days = month === 2 && leap ? 29 : (DAYS_IN_MONTH[month - 1] ?? 0);
  if (month < 1 || day < 1 || day > days || number(ts, 11, 2) > 23 || number(ts, 14, 2) > 59 || number(ts, 17, 2) > 59) return undefined;
  return length === 24 ? ts : `${ts.slice(0, 19)}.000Z`;
}

function isDigit(code: number): boolean {
  return code >= 0x30 && code <= 0x39;
}

/** The decimal number of `count` digits at `from` (already checked to be digits). */
function number(text: string, from: number, count: number): number {
  let value = 0;
  for (let i = from; i < from + count; i++) value = value * 10 + (text.charCodeAt(i) - 0x30);
  return value;
}

/** The cells of one CSV record (RFC 4180 quoting; a record is one line). */
export function splitCsv(line: string): string[] | string {
  const cells: string[] = [];
  let i = 0;
  for (;;) {
    if (line[i] === '"') {
      let cell = "";
      i++;
      for (;;) {
        const close = line.indexOf('"', i);
        if (close === -1) return "unterminated quoted field";
        cell += line.slice(i, close);
        if (line[close + 1] === '"') {
          cell += '"';
          i = close + 2;
        } else {
          i = close + 1;
          break;
        }
      }
      cells.push(cell);
      if (i < line.length && line[i] !== ",") return "text after a quoted field";
    } else {
      const comma = line.indexOf(",", i);
      const end = comma === -1 ? line.length : comma;
      cells.push(line.slice(i, end));
      i = end;
    }
    if (i >= line.length) return cells;
    i++; // the comma
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a, 0);
  out.set(b, a.byteLength);
  return out;
}
