/**
 * How fresh a scheduled segment's answers say they are (issue 9): `stale` on the Segment and on
 * every hot-path answer, `next_evaluation_time`, and the last evaluation — driven by a fake clock
 * and explicit scheduler passes (SCHEDULER_ENABLED=false), across a restart, on both stores.
 */
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EvaluationTrigger, SegmentType } from "../../src/gen/segments/v1/segment_pb.js";
import { startService, type TestService } from "../support/service.js";
import { STORES, type TestStore } from "../support/stores.js";

const at = (iso: string) => new Date(iso);
const ENV = { SCHEDULER_ENABLED: "false" };

describe.each(STORES)("freshness on $name", (kind) => {
  const clock = { now: at("2026-01-01T08:30:00Z") };
  let store: TestStore;
  let service: TestService;
  let id = "";

  const start = async () => {
    service = await startService(store, ENV, undefined, () => clock.now);
  };
  const tick = async (iso: string) => {
    clock.now = at(iso);
    await service.app.scheduler.tick(clock.now);
    await service.app.scheduler.idle();
  };
  /** What every answer says about the segment at the fake clock's time. */
  const observed = async () => {
    const segment = (await service.segments.getSegment({ segmentId: id })).segment;
    const check = await service.membership.checkMembership({ userId: "fresh_user", segmentIds: [id] });
    const batch = await service.membership.batchCheckMembership({ segmentId: id, userIds: ["fresh_user"] });
    const next = segment?.nextEvaluationTime;
    return {
      stale: segment?.stale,
      checkStale: check.results[0]?.stale,
      batchStale: batch.stale,
      next: next === undefined ? null : timestampDate(next).toISOString(),
      member: check.results[0]?.member,
    };
  };
  const staleEverywhere = (stale: boolean) => ({ stale, checkStale: stale, batchStale: stale });

  beforeAll(async () => {
    store = await kind.create();
    await start();
    const created = await service.segments.createSegment({
      name: "hourly",
      type: SegmentType.DYNAMIC,
      query: { kind: { case: "sql", value: "SELECT 'fresh_user'::text AS user_id" } },
      schedule: { cron: "0 * * * *", timeZone: "UTC" },
    });
    id = created.segment?.id ?? "";
    await service.segments.activateSegment({ segmentId: id });
  });
  afterAll(async () => {
    await service.stop();
    await store.drop();
  });

  it("a new schedule is fresh and names its first run", async () => {
    await tick("2026-01-01T08:30:00Z");
    expect(await observed()).toMatchObject({ ...staleEverywhere(false), next: "2026-01-01T09:00:00.000Z", member: false });
  });

  it("a scheduled run fills the segment, is its last evaluation, and moves the next run on", async () => {
    await tick("2026-01-01T09:00:00Z");
    expect(await observed()).toMatchObject({ ...staleEverywhere(false), next: "2026-01-01T10:00:00.000Z", member: true });
    const last = (await service.segments.getSegment({ segmentId: id })).segment?.lastEvaluation;
    expect(last?.trigger).toBe(EvaluationTrigger.SCHEDULE);
    expect(last?.error).toBe("");
    expect(last?.total).toBe(1n);
  });

  it("a missed run is overdue, not stale, for one interval; then every answer says stale", async () => {
    clock.now = at("2026-01-01T10:59:59Z");
    // The 10:00 run never happened (no pass): it is still the next run, due now.
    expect(await observed()).toMatchObject({ ...staleEverywhere(false), next: "2026-01-01T10:00:00.000Z" });
    clock.now = at("2026-01-01T11:00:00Z");
    expect(await observed()).toMatchObject({ ...staleEverywhere(true), next: "2026-01-01T10:00:00.000Z", member: true });
  });

  it("a successful catch-up run makes it fresh again", async () => {
    await tick("2026-01-01T11:00:30Z");
    expect(await observed()).toMatchObject({ ...staleEverywhere(false), next: "2026-01-01T12:00:00.000Z" });
  });

  it("a manual evaluation counts as a success", async () => {
    clock.now = at("2026-01-01T12:59:00Z");
    await service.segments.evaluateSegment({ segmentId: id });
    clock.now = at("2026-01-01T13:30:00Z");
    // The 12:00 run was missed, but the 12:59 success covers until the fire after 13:00.
    expect(await observed()).toMatchObject(staleEverywhere(false));
    clock.now = at("2026-01-01T14:00:00Z");
    expect(await observed()).toMatchObject(staleEverywhere(true));
  });

  it("the last success survives a restart", async () => {
    await tick("2026-01-01T14:00:10Z");
    await service.stop();
    clock.now = at("2026-01-01T14:30:00Z");
    await start();
    expect(await observed()).toMatchObject({ ...staleEverywhere(false), member: true });
    const last = (await service.segments.getSegment({ segmentId: id })).segment?.lastEvaluation;
    expect(last?.startTime === undefined ? null : timestampDate(last.startTime).toISOString()).toBe("2026-01-01T14:00:10.000Z");
    clock.now = at("2026-01-01T16:00:00Z");
    expect(await observed()).toMatchObject(staleEverywhere(true));
  });

  it("a PAUSED segment is never stale and has no next run; resuming starts the promise afresh", async () => {
    await service.segments.pauseSegment({ segmentId: id });
    expect(await observed()).toMatchObject({ ...staleEverywhere(false), next: null });
    clock.now = at("2026-01-01T16:10:00Z");
    await service.segments.resumeSegment({ segmentId: id });
    expect(await observed()).toMatchObject(staleEverywhere(false));
    clock.now = at("2026-01-01T18:00:00Z");
    expect(await observed()).toMatchObject(staleEverywhere(true));
  });
});
