/**
 * The benchmark harness end to end at a tiny size: it must run every scenario and produce a row
 * per figure and baseline. No timing is asserted here; the numbers belong to `npm run bench`.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunResult } from "../../bench/lib/report.js";

const run = promisify(execFile);

describe("npm run bench", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "segments-bench-test-"));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  const bench = async (args: string[], env: Record<string, string> = {}) => {
    const { stdout } = await run(
      "npm",
      [
        "run",
        "bench",
        "--",
        "--users",
        "3000",
        "--duration",
        "0.3",
        "--restart-segments",
        "5",
        "--restart-members",
        "1000",
        "--directory-users",
        "3000",
        "--list-segments",
        "20",
        "--batch-sizes",
        "1000",
        "--arm-rounds",
        "1",
        "--arm-pairs",
        "1",
        "--start-rounds",
        "1",
        "--results-dir",
        dir,
        ...args,
      ],
      {
        env: { ...process.env, ...env },
        maxBuffer: 16 * 1024 * 1024,
      },
    );
    return stdout;
  };

  it("runs every scenario against every reachable baseline and writes the results", async () => {
    const stdout = await bench([
      "--name",
      "tiny",
      "--workers",
      "1",
      "--concurrency",
      "2",
      "--scenario",
      "check,bulk,memory,import,subtract,restart,batch-check,audience,replica,new-users,list-user-segments,auth,metrics-cost,directory,embedded-start",
      "--json",
      join(dir, "copy.json"),
    ]);
    const result = JSON.parse(await readFile(join(dir, "tiny.json"), "utf8")) as RunResult;
    expect(await readFile(join(dir, "copy.json"), "utf8")).toEqual(await readFile(join(dir, "tiny.json"), "utf8"));
    expect(result.skipped).toEqual([]);
    expect(new Set(result.rows.map((r) => r.scenario))).toEqual(
      new Set([
        "bulk",
        "check",
        "memory",
        "import",
        "subtract",
        "restart",
        "batch-check",
        "audience",
        "replica",
        "new-users",
        "list-user-segments",
        "auth",
        "metrics-cost",
        "directory",
        "embedded-start",
      ]),
    );
    const baselines = new Set(result.rows.map((r) => r.baseline));
    expect(baselines).toEqual(
      new Set([
        "Redis SADD, pipelined",
        "Postgres COPY",
        "Postgres COPY of the (uid, external id) rows into an index-free table",
        "Postgres COPY of the (uid, external id) rows into an index-free table, same round",
        "gRPC floor (no-op health check)",
        "floor-bare: bare grpc-js, no-op handler",
        "Redis SISMEMBER",
        "Postgres PK lookup",
        "Redis used_memory growth",
        "Postgres table + PK index",
        "Postgres: COPY every membership row out",
        "Redis SDIFFSTORE",
        "Postgres EXCEPT (count)",
        "V8 Map<string, number>",
        "Redis SMISMEMBER",
        "Postgres uid = ANY($2::int[])",
        "Redis SUNIONSTORE + SDIFFSTORE + SCARD",
        "Postgres count(*) of UNION … EXCEPT",
        "Redis SUNIONSTORE + SDIFFSTORE, then SSCAN COUNT 10000",
        "Postgres COPY (UNION … EXCEPT) TO STDOUT",
        "the same stream, fast reader",
        "CheckMembership, one segment (dense)",
        "Postgres segment_id by uid (secondary index)",
        "Redis SISMEMBER, 1 in flight",
        "AddMembers round trip (ack)",
        "the same service's later start on the same directory",
        "authentication off (no token)",
        "call counting off (METRICS_ENABLED=false)",
      ]),
    );
    for (const row of result.rows) {
      // Memory growth of a few thousand users is below the allocator's and the GC's granularity:
      // it can come out at zero or below. Those rows must hold numbers; the rest must be positive.
      const least = /growth/.test(`${row.figure} ${row.baseline}`) ? Number.NEGATIVE_INFINITY : 0;
      expect(Number.isFinite(row.ours), `${row.scenario} ${row.figure}`).toBe(true);
      expect(Number.isFinite(row.baselineValue), `${row.scenario} ${row.figure} vs ${row.baseline}`).toBe(true);
      expect(row.ours, `${row.scenario} ${row.figure}`).toBeGreaterThan(least);
      expect(row.baselineValue, `${row.scenario} ${row.figure} vs ${row.baseline}`).toBeGreaterThan(least);
    }
    // Server CPU per call is measured for the gRPC servers only: a check against our health check
    // and the bare grpc-js server, a batch check (per segment) against the bare server.
    const cpu = (scenario: string) =>
      result.rows.filter((r) => r.scenario === scenario && r.figure.startsWith("server CPU per call")).map((r) => r.baseline);
    expect(cpu("check").sort()).toEqual(["floor-bare: bare grpc-js, no-op handler", "gRPC floor (no-op health check)"]);
    expect(cpu("batch-check")).toEqual(["floor-bare: bare grpc-js, no-op handler", "floor-bare: bare grpc-js, no-op handler"]);
    expect(result.dataset).toMatchObject({ users: 3000 });
    expect(stdout).toContain("| check | p50 latency, 1 in flight |");
  }, 300_000);

  it("still completes with Redis unreachable, and says why its column is empty", async () => {
    const stdout = await bench(["--name", "no-redis", "--scenario", "memory,audience"], { REDIS_URL: "redis://127.0.0.1:1" });
    const result = JSON.parse(await readFile(join(dir, "no-redis.json"), "utf8")) as RunResult;
    expect(result.skipped).toHaveLength(1);
    expect(result.skipped[0]).toContain("Redis at redis://127.0.0.1:1 unreachable");
    const redisRows = result.rows.filter((r) => r.baseline.startsWith("Redis"));
    expect(redisRows.length).toBeGreaterThan(0);
    for (const row of redisRows) expect(row.baselineValue).toBeUndefined();
    expect(stdout).toContain("Skipped baseline: Redis at redis://127.0.0.1:1 unreachable");
    expect(stdout).toMatch(/\| Redis used_memory growth \| skipped \| — \|/);
  });
});
