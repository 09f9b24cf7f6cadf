/**
 * Fuzzing every SegmentService and MembershipService method with random, truncated, bit-flipped,
 * extreme and oversized requests through a raw client, on both stores (PGlite answers from a
 * worker thread, Postgres over a socket, and each sees the bytes the other might forgive). Seeded
 * and bounded; the long form is `npm run fuzz -- --requests 100000`. FUZZ_SEED and
 * FUZZ_REQUESTS override the run.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { FUZZED_SERVICES, type FuzzReport, formatReport, runFuzz, seedState } from "../support/fuzz.js";
import { useService } from "../support/service.js";
import { STORES } from "../support/stores.js";

const SEED = Number(process.env.FUZZ_SEED ?? 20_261_129);
const REQUESTS = Number(process.env.FUZZ_REQUESTS ?? 2_500);
/** Each store's run stops at a request boundary after this long, so the file stays under a minute on 2 cores. */
const TIME_LIMIT_MS = 22_000;

describe.each(STORES)("fuzzing every method on $name", (kind) => {
  const fixture = useService(kind);
  let report: FuzzReport;

  beforeAll(async () => {
    const pools = await seedState(fixture.service.address);
    report = await runFuzz({ address: fixture.service.address, seed: SEED, requests: REQUESTS, timeLimitMs: TIME_LIMIT_MS }, pools);
    if (report.failures.length > 0) process.stderr.write(`${formatReport(report)}\n`);
  });

  const failures = (kind: string) =>
    report.failures.filter((f) => f.kind === kind).map((f) => `#${f.request} ${f.method} [${f.how}]: ${f.detail}\n  ${f.hex}`);

  it("calls every method of both services", () => {
    const methods = FUZZED_SERVICES.flatMap((s) => s.methods.map((m) => m.name));
    expect(Object.keys(report.byMethod).sort()).toEqual([...methods].sort());
  });

  it("never answers INTERNAL or UNKNOWN", () => {
    expect(failures("forbidden code")).toEqual([]);
  });

  it("changes nothing when it refuses a call", () => {
    expect(report.stateChecks).toBeGreaterThan(0);
    expect(failures("state changed")).toEqual([]);
  });

  it("keeps answering its health check", () => {
    expect(report.healthChecks).toBeGreaterThan(0);
    expect(failures("health")).toEqual([]);
  });

  // The issue asks for this bound; the window measured holds the server's work (see fuzz.ts).
  it("never stalls its event loop for more than 200 ms", () => {
    expect(failures("event loop")).toEqual([]);
  });
});
