/** The scheduler's pure rules: due decisions, settlement and backoff, staleness. */
import { describe, expect, it } from "vitest";
import { backoffMs, DEFAULT_SCHEDULE_POLICY, decideDue, scheduleKey, settleRun } from "../../src/schedule/schedule-policy.js";
import { isStale, nextEvaluationTime } from "../../src/schedule/staleness.js";
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
  const segment = {
    id: "s",
    type: "DYNAMIC" as const,
    status: "ACTIVE" as const,
    schedule: { cron: "0 * * * *", timeZone: "UTC" },
    updatedAt: at("2026-01-01T08:30:00Z"),
  };
  const grace = 5 * 60_000;

  it.each([
    { name: "fresh: the 10:00 run succeeded", last: "2026-01-01T10:00:01Z", now: "2026-01-01T10:30:00Z", stale: false },
    { name: "within grace of the 10:00 run", last: "2026-01-01T09:00:01Z", now: "2026-01-01T10:04:59Z", stale: false },
    { name: "10:00 run not succeeded past grace", last: "2026-01-01T09:00:01Z", now: "2026-01-01T10:05:00Z", stale: true },
    { name: "never succeeded, a run was due", last: null, now: "2026-01-01T09:10:00Z", stale: true },
    { name: "no run due since the schedule was set", last: null, now: "2026-01-01T08:50:00Z", stale: false },
  ])("$name → $stale", ({ last, now, stale }) => {
    expect(isStale(segment, last === null ? null : at(last), at(now), grace)).toBe(stale);
  });

  it.each(["PAUSED", "DRAFT", "ARCHIVED"] as const)("a %s segment is never stale and has no next evaluation", (status) => {
    expect(isStale({ ...segment, status }, null, at("2026-01-02T00:00:00Z"), grace)).toBe(false);
    expect(nextEvaluationTime({ ...segment, status }, at("2026-01-02T00:00:00Z"))).toBeNull();
  });

  it("without a cron, never stale and no next evaluation", () => {
    const manual = { ...segment, schedule: { cron: "", timeZone: "UTC" } };
    expect(isStale(manual, null, at("2026-01-02T00:00:00Z"), grace)).toBe(false);
    expect(nextEvaluationTime(manual, at("2026-01-02T00:00:00Z"))).toBeNull();
  });

  it("next evaluation: the next fire, or the stored next_run_at when there is one", () => {
    expect(nextEvaluationTime(segment, at("2026-01-01T10:30:00Z"))).toEqual(at("2026-01-01T11:00:00Z"));
    expect(nextEvaluationTime(segment, at("2026-01-01T10:30:00Z"), at("2026-01-01T10:31:00Z"))).toEqual(at("2026-01-01T10:31:00Z"));
  });
});
