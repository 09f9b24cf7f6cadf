/**
 * The scheduler against real stores, driven by a fake clock through `tick(now)`: skips are
 * recorded, runs never overlap, failures back off, a missed run is caught up once, and two
 * replicas on one Postgres run every due evaluation exactly once between them.
 */
import { randomUUID } from "node:crypto";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import type { SegmentStatus } from "../../src/model.js";
import type { ScheduledSegment } from "../../src/schedule/schedule-policy.js";
import { Scheduler } from "../../src/schedule/scheduler.js";
import type { Database } from "../../src/store/database.js";
import { EvaluationStore } from "../../src/store/evaluation-store.js";
import { migrate } from "../../src/store/migrate.js";
import { ScheduleStore } from "../../src/store/schedule-store.js";
import { STORES, type TestStore } from "../support/stores.js";

const log = pino({ level: process.env.SCHEDULER_TEST_LOG ?? "silent" });
const MINUTE = 60_000;
const T0 = new Date("2026-03-01T00:00:30Z");
const minute = (n: number) => new Date(T0.getTime() + n * MINUTE);

/** Inserts an ACTIVE DYNAMIC segment with a schedule; returns its in-memory view. */
async function createSegment(db: Database, cron: string, status: SegmentStatus = "ACTIVE"): Promise<ScheduledSegment> {
  const id = randomUUID();
  await db.query(
    `INSERT INTO segments (id, name, type, status, schedule_cron, schedule_time_zone, created_at, updated_at)
     VALUES ($1, $2, 'DYNAMIC', $3, $4, 'UTC', now(), now())`,
    [id, `seg-${id}`, status, cron],
  );
  return { id, type: "DYNAMIC", status, schedule: { cron, timeZone: "UTC" } };
}

async function setStatus(db: Database, segment: ScheduledSegment, status: SegmentStatus): Promise<void> {
  await db.query("UPDATE segments SET status = $2 WHERE id = $1", [segment.id, status]);
  segment.status = status;
}

/** An evaluate that records a SUCCEEDED run, as the evaluation service does, and counts calls. */
function recordingEvaluate(db: Database, clock: { now: Date }, calls: string[]) {
  const evaluations = new EvaluationStore(db);
  return async (segmentId: string) => {
    calls.push(segmentId);
    await evaluations.record(db, {
      segmentId,
      trigger: "SCHEDULE",
      status: "SUCCEEDED",
      startedAt: clock.now,
      durationMs: 1,
      added: 0,
      removed: 0,
      total: 0,
      version: 1,
      error: null,
    });
  };
}

async function statuses(db: Database, id: string): Promise<string[]> {
  return (await new EvaluationStore(db).list(id, null, 1_000)).map((e) => e.status).reverse();
}

describe.each(STORES)("scheduler on $name", (kind) => {
  let store: TestStore;
  let db: Database;

  beforeAll(async () => {
    store = await kind.create();
    db = await openDatabase(loadConfig(store.env), log);
    await migrate(db);
  });
  afterAll(async () => {
    await db.close();
    await store.drop();
  });

  it("arms a new schedule at its next fire, not at once, and runs it when due", async () => {
    const clock = { now: minute(0) };
    const segment = await createSegment(db, "*/5 * * * *");
    const calls: string[] = [];
    const scheduler = new Scheduler({
      clock: () => clock.now,
      store: new ScheduleStore(db),
      log,
      evaluate: recordingEvaluate(db, clock, calls),
      listSegments: () => [segment],
    });
    expect(await scheduler.tick(minute(0))).toMatchObject({ armed: 1, started: [] });
    expect((await new ScheduleStore(db).state(segment.id))?.nextRunAt).toEqual(new Date("2026-03-01T00:05:00Z"));
    expect((await scheduler.tick(minute(4))).started).toEqual([]);
    clock.now = minute(5);
    expect((await scheduler.tick(minute(5))).started).toEqual([segment.id]);
    await scheduler.idle();
    expect(calls).toEqual([segment.id]);
    const state = await new ScheduleStore(db).state(segment.id);
    expect(state).toMatchObject({ nextRunAt: new Date("2026-03-01T00:10:00Z"), failures: 0, runningSince: null, lastSuccessAt: minute(5) });
  });

  it("records a PAUSED segment's due run as SKIPPED and does not evaluate it", async () => {
    const clock = { now: minute(0) };
    const segment = await createSegment(db, "* * * * *");
    const calls: string[] = [];
    const scheduler = new Scheduler({
      clock: () => clock.now,
      store: new ScheduleStore(db),
      log,
      evaluate: recordingEvaluate(db, clock, calls),
      listSegments: () => [segment],
    });
    await scheduler.tick(minute(0));
    await setStatus(db, segment, "PAUSED");
    expect((await scheduler.tick(minute(1))).skipped).toEqual([segment.id]);
    await scheduler.idle();
    expect(calls).toEqual([]);
    const [skip] = await new EvaluationStore(db).list(segment.id, null, 10);
    expect(skip).toMatchObject({ trigger: "SCHEDULE", status: "SKIPPED", startedAt: minute(1), error: "skipped: the segment is PAUSED" });
    // Resumed: the next due run runs.
    await setStatus(db, segment, "ACTIVE");
    clock.now = minute(2);
    expect((await scheduler.tick(minute(2))).started).toEqual([segment.id]);
    await scheduler.idle();
    expect(await statuses(db, segment.id)).toEqual(["SKIPPED", "SUCCEEDED"]);
  });

  it("never runs one segment twice at once: a run still going when the next comes due is skipped and recorded", async () => {
    const segment = await createSegment(db, "* * * * *");
    let release: () => void = () => undefined;
    let calls = 0;
    const scheduler = new Scheduler({
      clock: () => minute(3),
      store: new ScheduleStore(db),
      log,
      evaluate: () => {
        calls++;
        return new Promise<void>((resolve) => {
          release = resolve;
        });
      },
      listSegments: () => [segment],
    });
    await scheduler.tick(minute(0));
    expect((await scheduler.tick(minute(1))).started).toEqual([segment.id]);
    expect((await scheduler.tick(minute(2))).skipped).toEqual([segment.id]);
    // A second replica (no memory of the run) sees the lease in the database and skips too.
    const other = new Scheduler({
      clock: () => minute(3),
      store: new ScheduleStore(db),
      log,
      evaluate: async () => undefined,
      listSegments: () => [segment],
    });
    expect((await other.tick(minute(3))).skipped).toEqual([segment.id]);
    release();
    await scheduler.idle();
    expect(calls).toBe(1);
    expect(await statuses(db, segment.id)).toEqual(["SKIPPED", "SKIPPED"]);
    expect((await scheduler.tick(minute(4))).started).toEqual([segment.id]);
    release();
    await scheduler.idle();
  });

  it("backs off after failures (exponential, capped), records the error, and resets on success", async () => {
    const clock = { now: minute(0) };
    const segment = await createSegment(db, "* * * * *");
    const schedules = new ScheduleStore(db);
    let failing = true;
    const scheduler = new Scheduler({
      clock: () => clock.now,
      store: schedules,
      log,
      policy: { backoffBaseMs: 2 * MINUTE, backoffMaxMs: 5 * MINUTE },
      evaluate: async () => {
        if (failing) throw new Error("analytics source unreachable");
      },
      listSegments: () => [segment],
    });
    await scheduler.tick(minute(0));
    const expected = [
      { at: 1, retry: 3, failures: 1 }, // +2 min
      { at: 3, retry: 7, failures: 2 }, // +4 min
      { at: 7, retry: 12, failures: 3 }, // +8 capped to +5
      { at: 12, retry: 17, failures: 4 },
    ];
    for (const step of expected) {
      // Nothing runs before the retry time, though the cron fires every minute.
      expect((await scheduler.tick(minute(step.at - 1))).started).toEqual([]);
      clock.now = minute(step.at);
      expect((await scheduler.tick(minute(step.at))).started).toEqual([segment.id]);
      await scheduler.idle();
      expect(await schedules.state(segment.id)).toMatchObject({
        nextRunAt: minute(step.retry),
        failures: step.failures,
        error: "analytics source unreachable",
      });
    }
    failing = false;
    clock.now = minute(17);
    await scheduler.tick(minute(17));
    await scheduler.idle();
    expect(await schedules.state(segment.id)).toMatchObject({ nextRunAt: new Date("2026-03-01T00:18:00Z"), failures: 0, error: null });
  });

  it("catches up a run missed while down once, not once per missed fire", async () => {
    const clock = { now: minute(0) };
    const segment = await createSegment(db, "* * * * *");
    const calls: string[] = [];
    const before = new Scheduler({
      clock: () => clock.now,
      store: new ScheduleStore(db),
      log,
      evaluate: recordingEvaluate(db, clock, calls),
      listSegments: () => [segment],
    });
    await before.tick(minute(0));
    // Down for three fires (00:01, 00:02, 00:03); a new process starts at 00:03:30.
    clock.now = minute(3);
    const after = new Scheduler({
      clock: () => clock.now,
      store: new ScheduleStore(db),
      log,
      evaluate: recordingEvaluate(db, clock, calls),
      listSegments: () => [segment],
    });
    expect((await after.tick(minute(3))).started).toEqual([segment.id]);
    await after.idle();
    expect((await after.tick(minute(3))).started).toEqual([]);
    expect(calls).toEqual([segment.id]);
    expect((await new ScheduleStore(db).state(segment.id))?.nextRunAt).toEqual(new Date("2026-03-01T00:04:00Z"));
  });

  it("disarms a segment that is archived and re-arms it fresh when it comes back", async () => {
    const segment = await createSegment(db, "* * * * *");
    const scheduler = new Scheduler({
      clock: () => minute(0),
      store: new ScheduleStore(db),
      log,
      evaluate: async () => undefined,
      listSegments: () => [segment],
    });
    await scheduler.tick(minute(0));
    await setStatus(db, segment, "ARCHIVED");
    expect(await scheduler.tick(minute(1))).toMatchObject({ disarmed: 1, started: [], skipped: [] });
    expect((await new ScheduleStore(db).state(segment.id))?.nextRunAt).toBeNull();
    await setStatus(db, segment, "ACTIVE");
    expect(await scheduler.tick(minute(50))).toMatchObject({ armed: 1, started: [], skipped: [] });
    expect((await new ScheduleStore(db).state(segment.id))?.nextRunAt).toEqual(new Date("2026-03-01T00:51:00Z"));
  });

  it("one instance through 100 ticks of an every-minute schedule: each due run exactly once", async () => {
    const clock = { now: minute(0) };
    const segments = await Promise.all([1, 2, 3].map(() => createSegment(db, "* * * * *")));
    const calls: string[] = [];
    const scheduler = new Scheduler({
      clock: () => clock.now,
      store: new ScheduleStore(db),
      log,
      evaluate: recordingEvaluate(db, clock, calls),
      listSegments: () => segments,
    });
    for (let i = 0; i < 100; i++) {
      clock.now = minute(i);
      await scheduler.tick(clock.now);
      await scheduler.idle();
    }
    // Armed at tick 0 for 00:01; ticks 1..99 each find one due run per segment.
    expect(calls).toHaveLength(99 * 3);
    for (const segment of segments) {
      expect(calls.filter((id) => id === segment.id)).toHaveLength(99);
      expect(await new EvaluationStore(db).list(segment.id, null, 1_000)).toHaveLength(99);
    }
  });
});

describe("two scheduler replicas on one Postgres", () => {
  const postgres = STORES.find((s) => s.name === "postgres");
  if (postgres === undefined) throw new Error("no postgres store kind");
  let store: TestStore;
  let dbs: Database[];

  beforeAll(async () => {
    store = await postgres.create();
    dbs = [await openDatabase(loadConfig(store.env), log), await openDatabase(loadConfig(store.env), log)];
    await migrate(dbs[0] as Database);
  });
  afterAll(async () => {
    for (const db of dbs) await db.close();
    await store.drop();
  });

  it("run every due evaluation exactly once between them, through 100 ticks", async () => {
    const [a, b] = dbs as [Database, Database];
    const views = await Promise.all([1, 2, 3, 4].map(() => createSegment(a, "* * * * *")));
    const clock = { now: minute(0) };
    const replica = (db: Database, calls: string[]) => {
      // Each replica has its own copy of the segments, as each process has its own memory.
      const own = views.map((v) => ({ ...v, schedule: v.schedule === null ? null : { ...v.schedule } }));
      return new Scheduler({
        clock: () => clock.now,
        store: new ScheduleStore(db),
        log,
        evaluate: recordingEvaluate(db, clock, calls),
        listSegments: () => own,
      });
    };
    const callsA: string[] = [];
    const callsB: string[] = [];
    const replicas = [replica(a, callsA), replica(b, callsB)];
    for (let i = 0; i < 100; i++) {
      clock.now = minute(i);
      await Promise.all(replicas.map((r) => r.tick(clock.now)));
      await Promise.all(replicas.map((r) => r.idle()));
    }
    const all = [...callsA, ...callsB];
    expect(all).toHaveLength(99 * views.length);
    for (const view of views) {
      expect(all.filter((id) => id === view.id)).toHaveLength(99);
      const rows = await new EvaluationStore(a).list(view.id, null, 1_000);
      expect(rows).toHaveLength(99);
      expect(new Set(rows.map((r) => r.startedAt.getTime())).size).toBe(99);
      expect(rows.every((r) => r.status === "SUCCEEDED")).toBe(true);
    }
    // Which replica wins a claim is up to the lock queue; nothing splits the work by construction.
    log.info({ a: callsA.length, b: callsB.length }, "runs per replica");
  });
});
