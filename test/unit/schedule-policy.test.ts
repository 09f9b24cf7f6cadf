/** The scheduler's pure rules: due decisions, settlement and backoff, staleness. */
import { describe, expect, it } from "vitest";
import { backoffMs, DEFAULT_SCHEDULE_POLICY, decideDue, scheduleKey, settleRun } from "../../src/schedule/schedule-policy.js";
import { type FreshnessSegment, isStale, nextEvaluationTime, staleFrom } from "../../src/schedule/staleness.js";
import type { ScheduleRow } from "../../src/store/schedule-store.js";

const policy = DEFAULT_SCHEDULE_POLICY;
const at = (iso: string) => new Date(iso);

function row(over: Partial<ScheduleRow> = {}): ScheduleRow {
  return {
    id: "s",
    type: "DYNAMIC",
    status: "ACTIVE",
    cron: "0 * * * *",
    timeZone: "UTC",
    memberCount: 7,
    version: 3,
    nextRunAt: at("2026-01-01T10:00:00Z"),
    armed: scheduleKey("0 * * * *", "UTC"),
    runningSince: null,
    failures: 0,
    ...over,
  };
}

describe("decideDue", () => {
  const now = at("2026-01-01T10:00:05Z");
  it.each([
    { name: "not yet due", row: row({ nextRunAt: at("2026-01-01T11:00:00Z") }), kind: "none" },
    { name: "not armed", row: row({ nextRunAt: null }), kind: "none" },
    { name: "due and ACTIVE", row: row(), kind: "run" },
    { name: "due and PAUSED", row: row({ status: "PAUSED" }), kind: "skip" },
    { name: "due while the previous run holds its lease", row: row({ runningSince: at("2026-01-01T09:45:00Z") }), kind: "skip" },
    {
      name: "due after the previous run's lease expired",
      row: row({ runningSince: at("2026-01-01T09:00:00Z") }),
      kind: "run",
      leaseMs: 60_000,
    },
    { name: "ARCHIVED", row: row({ status: "ARCHIVED" }), kind: "disarm" },
    { name: "DRAFT", row: row({ status: "DRAFT" }), kind: "disarm" },
    { name: "cron removed", row: row({ cron: "" }), kind: "disarm" },
    { name: "schedule changed, armed for the old one", row: row({ cron: "*/5 * * * *" }), kind: "none" },
  ])("$name → $kind", ({ row: r, kind, leaseMs }) => {
    expect(decideDue(r, now, { ...policy, leaseMs: leaseMs ?? policy.leaseMs }).kind).toBe(kind);
  });

  it("a run still going in this process is skipped whatever the lease says", () => {
    expect(decideDue(row(), now, policy, true).kind).toBe("skip");
  });

  it("catches up once: three missed fires make one run, and next_run_at is the first fire after now", () => {
    const late = at("2026-01-01T13:20:00Z");
    expect(decideDue(row(), late, policy)).toEqual({ kind: "run", nextRunAt: at("2026-01-01T14:00:00Z"), runningSince: late });
  });
});

describe("settleRun and backoff", () => {
  const since = at("2026-01-01T10:00:00Z");
  const now = at("2026-01-01T10:00:30Z");
  const running = row({ runningSince: since, nextRunAt: at("2026-01-01T11:00:00Z") });

  it("success keeps next_run_at and clears the failures", () => {
    expect(settleRun({ ...running, failures: 3 }, since, { error: null }, now, policy)).toEqual({
      nextRunAt: at("2026-01-01T11:00:00Z"),
      failures: 0,
      error: null,
    });
  });

  it.each([
    [1, 60_000],
    [2, 120_000],
    [3, 240_000],
    [7, 3_600_000],
    [50, 3_600_000],
  ])("failure number %i retries after %i ms", (failures, ms) => {
    expect(backoffMs(failures, policy)).toBe(ms);
    const settled = settleRun({ ...running, failures: failures - 1 }, since, { error: "boom" }, now, policy);
    expect(settled).toEqual({ nextRunAt: new Date(now.getTime() + ms), failures, error: "boom" });
  });

  it("a run that lost its claim leaves the row alone", () => {
    expect(settleRun({ ...running, runningSince: at("2026-01-01T10:30:00Z") }, since, { error: null }, now, policy)).toBeNull();
  });
});

describe("staleness", () => {
  const segment: FreshnessSegment = {
    id: "s",
    type: "DYNAMIC",
    status: "ACTIVE",
    schedule: { cron: "0 * * * *", timeZone: "UTC" },
    updatedAt: at("2026-01-01T08:30:00Z"),
    lastSuccessAt: null,
  };
  const stale = (last: string | null, now: string, over: Partial<FreshnessSegment> = {}) =>
    isStale({ ...segment, ...over, lastSuccessAt: last === null ? null : at(last) }, at(now).getTime());

  it.each([
    { name: "fresh: the 10:00 run succeeded", last: "2026-01-01T10:00:01Z", now: "2026-01-01T10:30:00Z", want: false },
    {
      name: "10:00 run not succeeded, overdue by less than an interval",
      last: "2026-01-01T09:00:01Z",
      now: "2026-01-01T10:59:59Z",
      want: false,
    },
    {
      name: "10:00 run not succeeded by 11:00: overdue by an interval",
      last: "2026-01-01T09:00:01Z",
      now: "2026-01-01T11:00:00Z",
      want: true,
    },
    { name: "a success exactly at a fire covers that fire", last: "2026-01-01T10:00:00Z", now: "2026-01-01T10:59:59Z", want: false },
    { name: "never succeeded: the 09:00 run is due, not yet overdue", last: null, now: "2026-01-01T09:59:59Z", want: false },
    { name: "never succeeded: stale from 10:00", last: null, now: "2026-01-01T10:00:00Z", want: true },
    {
      name: "a success before the schedule was set does not count against it",
      last: "2025-12-01T00:00:00Z",
      now: "2026-01-01T09:30:00Z",
      want: false,
    },
  ])("$name → $want", ({ last, now, want }) => {
    expect(stale(last, now)).toBe(want);
  });

  it("counts intervals on the wall clock: every 6 hours in Europe/Berlin across the spring change", () => {
    const berlin = { schedule: { cron: "0 */6 * * *", timeZone: "Europe/Berlin" }, updatedAt: at("2026-03-28T00:00:00Z") };
    // Last success 06:00 CET on 28 March (05:00Z); the 12:00 run failed; the next fire is 18:00 CET = 17:00Z.
    expect(staleFrom({ ...segment, ...berlin, lastSuccessAt: at("2026-03-28T05:00:00Z") })).toEqual(at("2026-03-28T17:00:00Z"));
    // Across the change (29 March, 02:00 → 03:00): 00:00 CET = 23:00Z, 06:00 CEST = 04:00Z.
    expect(staleFrom({ ...segment, ...berlin, lastSuccessAt: at("2026-03-28T17:00:00Z") })).toEqual(at("2026-03-29T04:00:00Z"));
  });

  it("memoizes per segment object: a replaced segment is judged afresh", () => {
    const s1 = { ...segment, lastSuccessAt: null };
    expect(isStale(s1, at("2026-01-01T12:00:00Z").getTime())).toBe(true);
    const s2 = { ...s1, lastSuccessAt: at("2026-01-01T11:59:00Z") };
    expect(isStale(s2, at("2026-01-01T12:00:00Z").getTime())).toBe(false);
    expect(isStale(s1, at("2026-01-01T12:00:00Z").getTime())).toBe(true);
  });

  it.each(["PAUSED", "DRAFT", "ARCHIVED"] as const)("a %s segment is never stale and has no next evaluation", (status) => {
    expect(stale(null, "2026-01-02T00:00:00Z", { status })).toBe(false);
    expect(nextEvaluationTime({ ...segment, status }, at("2026-01-02T00:00:00Z"))).toBeNull();
  });

  it("without a cron, never stale and no next evaluation", () => {
    const manual = { ...segment, schedule: { cron: "", timeZone: "UTC" } };
    expect(stale(null, "2026-01-02T00:00:00Z", manual)).toBe(false);
    expect(nextEvaluationTime(manual, at("2026-01-02T00:00:00Z"))).toBeNull();
  });

  it("next evaluation: the next fire, or the stored next_run_at when there is one", () => {
    expect(nextEvaluationTime(segment, at("2026-01-01T10:30:00Z"))).toEqual(at("2026-01-01T11:00:00Z"));
    expect(nextEvaluationTime(segment, at("2026-01-01T10:30:00Z"), at("2026-01-01T10:31:00Z"))).toEqual(at("2026-01-01T10:31:00Z"));
  });
});
