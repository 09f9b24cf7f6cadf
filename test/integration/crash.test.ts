/**
 * Acceptance of issue 5: the real process, SIGKILLed at random moments while four clients change
 * membership, loses no acknowledged change and exposes no half-applied one, on both stores. The
 * model and the checks live in test/support/crash-driver.ts; `bench/crash.ts` runs more kills.
 * CRASH_SEED replays a run's calls and kill delays; CRASH_OPS (e.g. "add,remove") narrows the
 * calls issued, for debugging only.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseOps, runCrashScenario } from "../support/crash-driver.js";
import { STORES, type TestStore } from "../support/stores.js";

const SEED = process.env.CRASH_SEED === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(process.env.CRASH_SEED);
const OPS = parseOps(process.env.CRASH_OPS);
const KILLS = 20;

describe.each(STORES)("kill -9 on $name", (kind) => {
  let store: TestStore;

  beforeAll(async () => {
    store = await kind.create();
  });
  afterAll(async () => {
    await store.drop();
  });

  it(`keeps every acknowledged change and no half-applied one across ${KILLS} kills`, { timeout: 240_000 }, async () => {
    const report = await runCrashScenario({ env: store.env, seed: SEED, kills: KILLS, ops: OPS });
    const replay = `seed ${SEED}: replay with CRASH_SEED=${SEED}`;
    expect(report.violations, replay).toEqual([]);
    expect(report.wrongAnswers, `${replay}: added / removed / unchanged counters`).toEqual([]);
    expect(report.kills, replay).toBe(KILLS);
    // The run proves something only if it exercised every call and the kills cut calls in flight.
    for (const op of OPS) expect(report.acknowledged[op], `${replay}: acknowledged ${op} calls`).toBeGreaterThan(0);
    expect(report.inDoubt.applied + report.inDoubt.notApplied, `${replay}: calls cut by a kill`).toBeGreaterThan(0);
  });
});
