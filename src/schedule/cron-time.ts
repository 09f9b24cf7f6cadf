/**
 * Cron arithmetic as pure functions of an instant: when does an expression fire, in a zone, after
 * (or at or before) a given time. No clock, no timers, no I/O — the scheduler passes time in, so
 * tests drive it with plain Dates (graphile-worker's cronMatcher is the model).
 *
 * node-cron's public `parse` expands the expression (ranges, steps, names, nicknames, `?`, 7 as
 * Sunday) so the syntax accepted here is exactly what validation.ts accepts; its own matcher and
 * next-run walker are not exported and read the real clock, so the matching is done here, with
 * node-cron's semantics: day-of-month AND day-of-week must both match (not Vixie cron's OR), plus
 * its `L`, `L-n`, `nW`, `LW`, `dL` and `d#n` day tokens.
 *
 * Daylight saving time. An expression names local wall-clock times; each wall-clock time fires
 * at most once, at its first occurrence:
 * - spring forward: a local time that does not exist that day (02:30 in Europe/Berlin on the last
 *   Sunday of March) is skipped — it does not move to 03:30;
 * - fall back: a local time that occurs twice (02:30 on the last Sunday of October) fires once,
 *   at the earlier instant (the summer-time one); the repeat hour fires nothing new.
 * So `0 *\/6 * * *` in Europe/Berlin fires at 00:00, 06:00, 12:00 and 18:00 local every day of the
 * year, each once, whatever the UTC offset.
 */
import { parse } from "node-cron";

/** How far ahead (or back) a match is looked for: node-cron's own bound, 100 years of days. */
const MAX_DAYS = 366 * 100;
const DAY_MS = 86_400_000;

/** An expression expanded once: sorted time-of-day values and the day fields as node-cron gives them. */
interface Expanded {
  seconds: number[];
  minutes: number[];
  hours: number[];
  daysOfMonth: (number | string)[];
  months: Set<number>;
  daysOfWeek: (number | string)[];
}

/** Wall-clock fields of an instant in a zone. */
interface Wall {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

/** The first instant strictly after `after` at which `cron` fires in `timeZone`; null if it never fires within 100 years. */
export function nextFire(cron: string, timeZone: string, after: Date): Date | null {
  return find(cron, timeZone, after, 1);
}

/** The last instant at or before `atOrBefore` at which `cron` fires in `timeZone`; null if none within 100 years. */
export function previousFire(cron: string, timeZone: string, atOrBefore: Date): Date | null {
  return find(cron, timeZone, atOrBefore, -1);
}

function find(cron: string, timeZone: string, from: Date, direction: 1 | -1): Date | null {
  const zone = timeZone === "" ? "UTC" : timeZone;
  const e = expand(cron);
  const fromMs = from.getTime();
  // Local wall clock of `from`, written as if it were UTC: day arithmetic on it is calendar arithmetic.
  const fromWall = wallMs(wallOf(fromMs, zone));
  // Offsets in force around `from` (at most one transition in four days, in every real zone): a
  // wall time that is on the wrong side of `from` under each of them is skipped without Intl calls.
  const near = [offsetAt(fromMs - 2 * DAY_MS, zone), fromWall - Math.floor(fromMs / 1000) * 1000, offsetAt(fromMs + 2 * DAY_MS, zone)];
  const minOffset = Math.min(...near);
  const maxOffset = Math.max(...near);
  let dayStart = Math.floor(fromWall / DAY_MS) * DAY_MS;
  const hours = direction === 1 ? e.hours : [...e.hours].reverse();
  const minutes = direction === 1 ? e.minutes : [...e.minutes].reverse();
  const seconds = direction === 1 ? e.seconds : [...e.seconds].reverse();
  for (let i = 0; i < MAX_DAYS; i++, dayStart += direction * DAY_MS) {
    const date = new Date(dayStart);
    const year = date.getUTCFullYear();
    const month = date.getUTCMonth() + 1;
    const day = date.getUTCDate();
    if (!e.months.has(month) || !matchesDayOfMonth(e.daysOfMonth, year, month, day)) continue;
    if (!matchesDayOfWeek(e.daysOfWeek, year, month, day, date.getUTCDay())) continue;
    for (const hour of hours) {
      for (const minute of minutes) {
        for (const second of seconds) {
          const wall = dayStart + hour * 3_600_000 + minute * 60_000 + second * 1_000;
          if (direction === 1 ? wall - minOffset <= fromMs : wall - maxOffset > fromMs) continue;
          const at = firstInstant({ year, month, day, hour, minute, second }, zone);
          if (at === null) continue;
          // First occurrences are increasing in wall-clock order, so the first hit is the answer.
          if (direction === 1 ? at > fromMs : at <= fromMs) return new Date(at);
        }
      }
    }
  }
  return null;
}

/** Expands a node-cron expression (throws node-cron's message when it is invalid). */
function expand(cron: string): Expanded {
  const fields = parse(cron);
  const sorted = (values: number[]) => [...values].sort((a, b) => a - b);
  return {
    seconds: sorted(fields.second),
    minutes: sorted(fields.minute),
    hours: sorted(fields.hour),
    daysOfMonth: fields.dayOfMonth,
    months: new Set(fields.month),
    daysOfWeek: fields.dayOfWeek,
  };
}

/** The earliest instant whose wall clock in `zone` reads `wall`; null when that time does not exist there (a DST gap). */
function firstInstant(wall: Wall, zone: string): number | null {
  const asUtc = wallMs(wall);
  // The offset in force is one of those around the wall time: try each, keep those that read back.
  const offsets = new Set([offsetAt(asUtc - DAY_MS, zone), offsetAt(asUtc, zone), offsetAt(asUtc + DAY_MS, zone)]);
  let best: number | null = null;
  for (const offset of offsets) {
    const candidate = asUtc - offset;
    if (wallMs(wallOf(candidate, zone)) === asUtc && (best === null || candidate < best)) best = candidate;
  }
  return best;
}

/** The zone's UTC offset at an instant, in ms (wall clock minus UTC). */
function offsetAt(ms: number, zone: string): number {
  return wallMs(wallOf(ms, zone)) - Math.floor(ms / 1000) * 1000;
}

function wallMs(w: Wall): number {
  return Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function wallOf(ms: number, zone: string): Wall {
  let format = formatters.get(zone);
  if (format === undefined) {
    format = new Intl.DateTimeFormat("en-US", {
      timeZone: zone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    formatters.set(zone, format);
  }
  const wall: Wall = { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0 };
  for (const part of format.formatToParts(ms)) {
    if (part.type in wall) wall[part.type as keyof Wall] = Number(part.value);
  }
  return wall;
}

// Day tokens, with node-cron's meaning.
const LAST_DAY_OFFSET = /^L-(\d{1,2})$/;
const NEAREST_WEEKDAY = /^(\d{1,2}|L)W$/;
const LAST_WEEKDAY = /^([0-7])L$/;
const NTH_WEEKDAY = /^([0-7])#([1-5])$/;

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

function weekdayOf(year: number, month: number, day: number): number {
  return new Date(Date.UTC(year, month - 1, day)).getUTCDay();
}

/** The weekday (Mon–Fri) nearest to `target`, staying within the month. */
function nearestWeekday(year: number, month: number, target: number): number {
  const last = daysInMonth(year, month);
  if (target < 1 || target > last) return -1;
  const weekday = weekdayOf(year, month, target);
  if (weekday === 6) return target === 1 ? target + 2 : target - 1;
  if (weekday === 0) return target === last ? target - 2 : target + 1;
  return target;
}

function matchesDayOfMonth(field: (number | string)[], year: number, month: number, day: number): boolean {
  const last = daysInMonth(year, month);
  for (const value of field) {
    if (value === day) return true;
    if (typeof value !== "string") continue;
    if (value === "L" && day === last) return true;
    const offset = LAST_DAY_OFFSET.exec(value);
    if (offset !== null && last - Number(offset[1]) === day) return true;
    const near = NEAREST_WEEKDAY.exec(value);
    if (near?.[1] !== undefined && nearestWeekday(year, month, near[1] === "L" ? last : Number(near[1])) === day) return true;
  }
  return false;
}

function matchesDayOfWeek(field: (number | string)[], year: number, month: number, day: number, weekday: number): boolean {
  for (const value of field) {
    if (value === weekday) return true;
    if (typeof value !== "string") continue;
    const nth = NTH_WEEKDAY.exec(value);
    if (nth !== null && Number(nth[1]) % 7 === weekday && Math.floor((day - 1) / 7) + 1 === Number(nth[2])) return true;
    const lastOf = LAST_WEEKDAY.exec(value);
    if (lastOf !== null && Number(lastOf[1]) % 7 === weekday && day + 7 > daysInMonth(year, month)) return true;
  }
  return false;
}
