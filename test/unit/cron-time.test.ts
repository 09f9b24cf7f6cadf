/**
 * Cron time across daylight-saving changes, with exact UTC instants. Europe/Berlin 2026: clocks go
 * 02:00 → 03:00 on March 29 (CET +01 → CEST +02) and 03:00 → 02:00 on October 25.
 */
import { describe, expect, it } from "vitest";
import { nextFire, previousFire } from "../../src/schedule/cron-time.js";

/** The next `count` fires after `from`. */
function fires(cron: string, zone: string, from: string, count: number): string[] {
  const out: string[] = [];
  let at = new Date(from);
  for (let i = 0; i < count; i++) {
    const next = nextFire(cron, zone, at);
    if (next === null) throw new Error("no next fire");
    out.push(next.toISOString());
    at = next;
  }
  return out;
}

describe("nextFire", () => {
  it.each([
    {
      name: "every six hours across spring forward: 00, 06, 12, 18 local, the offset changes in between",
      cron: "0 */6 * * *",
      zone: "Europe/Berlin",
      from: "2026-03-28T12:00:00Z",
      want: [
        "2026-03-28T17:00:00.000Z", // 18:00 CET
        "2026-03-28T23:00:00.000Z", // 00:00 CET on the 29th
        "2026-03-29T04:00:00.000Z", // 06:00 CEST
        "2026-03-29T10:00:00.000Z",
        "2026-03-29T16:00:00.000Z",
        "2026-03-29T22:00:00.000Z", // 00:00 CEST on the 30th
      ],
    },
    {
      name: "every six hours across fall back: each local time once",
      cron: "0 */6 * * *",
      zone: "Europe/Berlin",
      from: "2026-10-24T12:00:00Z",
      want: [
        "2026-10-24T16:00:00.000Z", // 18:00 CEST
        "2026-10-24T22:00:00.000Z", // 00:00 CEST on the 25th
        "2026-10-25T05:00:00.000Z", // 06:00 CET
        "2026-10-25T11:00:00.000Z",
        "2026-10-25T17:00:00.000Z",
        "2026-10-25T23:00:00.000Z", // 00:00 CET on the 26th
      ],
    },
    {
      name: "a local time in the spring-forward gap is skipped that day",
      cron: "30 2 * * *",
      zone: "Europe/Berlin",
      from: "2026-03-28T00:00:00Z",
      want: ["2026-03-28T01:30:00.000Z", "2026-03-30T00:30:00.000Z"],
    },
    {
      name: "a local time in the repeated hour fires once, at its first (summer-time) occurrence",
      cron: "30 2 * * *",
      zone: "Europe/Berlin",
      from: "2026-10-24T00:00:00Z",
      want: ["2026-10-24T00:30:00.000Z", "2026-10-25T00:30:00.000Z", "2026-10-26T01:30:00.000Z"],
    },
    {
      name: "every minute through the repeated hour: the wall clock's 02:xx already fired, 03:00 CET comes next",
      cron: "* * * * *",
      zone: "Europe/Berlin",
      from: "2026-10-25T00:58:30Z",
      want: ["2026-10-25T00:59:00.000Z", "2026-10-25T02:00:00.000Z", "2026-10-25T02:01:00.000Z"],
    },
    {
      name: "UTC, six fields with seconds",
      cron: "*/20 * * * * *",
      zone: "UTC",
      from: "2026-01-01T00:00:00Z",
      want: ["2026-01-01T00:00:20.000Z", "2026-01-01T00:00:40.000Z", "2026-01-01T00:01:00.000Z"],
    },
    {
      name: "an empty zone means UTC",
      cron: "0 0 * * *",
      zone: "",
      from: "2026-01-01T00:00:00Z",
      want: ["2026-01-02T00:00:00.000Z"],
    },
    {
      name: "a zone east of UTC: Mondays 09:00 in Tokyo",
      cron: "0 9 * * 1",
      zone: "Asia/Tokyo",
      from: "2026-01-01T00:00:00Z",
      want: ["2026-01-05T00:00:00.000Z", "2026-01-12T00:00:00.000Z"],
    },
    {
      name: "day of month AND day of week (node-cron's rule): Friday the 13th",
      cron: "0 0 13 * 5",
      zone: "UTC",
      from: "2026-01-01T00:00:00Z",
      want: ["2026-02-13T00:00:00.000Z", "2026-03-13T00:00:00.000Z", "2026-11-13T00:00:00.000Z"],
    },
    {
      name: "last day of the month",
      cron: "0 12 L * *",
      zone: "UTC",
      from: "2026-02-01T00:00:00Z",
      want: ["2026-02-28T12:00:00.000Z", "2026-03-31T12:00:00.000Z"],
    },
    {
      name: "second Tuesday",
      cron: "0 0 * * 2#2",
      zone: "UTC",
      from: "2026-01-01T00:00:00Z",
      want: ["2026-01-13T00:00:00.000Z", "2026-02-10T00:00:00.000Z"],
    },
  ])("$name", ({ cron, zone, from, want }) => {
    expect(fires(cron, zone, from, want.length)).toEqual(want);
  });

  it("is strictly after: a fire instant itself is not returned", () => {
    expect(nextFire("0 * * * *", "UTC", new Date("2026-01-01T05:00:00Z"))?.toISOString()).toBe("2026-01-01T06:00:00.000Z");
    expect(nextFire("0 * * * *", "UTC", new Date("2026-01-01T04:59:59.999Z"))?.toISOString()).toBe("2026-01-01T05:00:00.000Z");
  });

  it("finds a rare date: February 29 on a Monday", () => {
    expect(nextFire("0 0 29 2 1", "UTC", new Date("2026-01-01T00:00:00Z"))?.toISOString()).toBe("2044-02-29T00:00:00.000Z");
  });
});

describe("previousFire", () => {
  it.each([
    { cron: "0 */6 * * *", zone: "Europe/Berlin", at: "2026-03-29T05:00:00Z", want: "2026-03-29T04:00:00.000Z" },
    { cron: "0 */6 * * *", zone: "Europe/Berlin", at: "2026-03-29T04:00:00Z", want: "2026-03-29T04:00:00.000Z" },
    { cron: "0 */6 * * *", zone: "Europe/Berlin", at: "2026-03-29T03:59:59Z", want: "2026-03-28T23:00:00.000Z" },
    { cron: "0 */6 * * *", zone: "Europe/Berlin", at: "2026-10-25T06:00:00Z", want: "2026-10-25T05:00:00.000Z" },
    { cron: "30 2 * * *", zone: "Europe/Berlin", at: "2026-10-25T02:00:00Z", want: "2026-10-25T00:30:00.000Z" },
    { cron: "30 2 * * *", zone: "Europe/Berlin", at: "2026-03-29T12:00:00Z", want: "2026-03-28T01:30:00.000Z" },
  ])("$cron in $zone at or before $at", ({ cron, zone, at, want }) => {
    expect(previousFire(cron, zone, new Date(at))?.toISOString()).toBe(want);
  });
});
