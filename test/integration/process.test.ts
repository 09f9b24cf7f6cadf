/**
 * The real entry point as a child process: it serves on the embedded store with no database
 * server, lists its services over reflection to `buf curl`, and shuts down cleanly on SIGTERM
 * even with a stream open.
 */
import { execFile, spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ENTRY, type ServiceProcess, spawnService } from "../../bench/lib/service-process.js";
import { createClient } from "../../src/client/client.js";
import { Health, HealthCheckResponse_ServingStatus as Serving } from "../../src/gen/grpc/health/v1/health_pb.js";

const run = promisify(execFile);

describe("the service process", () => {
  let dataDir: string;
  let main: ServiceProcess;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "segments-main-"));
    main = await spawnService({ DATA_DIR: dataDir, SHUTDOWN_GRACE_MS: "500" }, ENTRY.source);
  });
  afterAll(async () => {
    await main.stop("SIGKILL");
    await rm(dataDir, { recursive: true, force: true });
  });

  it("serves on the embedded store and lists every service over reflection", async () => {
    expect(main.logs.some((l) => l.msg === "using embedded PGlite")).toBe(true);
    const { stdout } = await run("npx", [
      "buf",
      "curl",
      "--protocol",
      "grpc",
      "--http2-prior-knowledge",
      "--list-methods",
      `http://127.0.0.1:${main.grpcPort}`,
    ]);
    const services = new Set(
      stdout
        .trim()
        .split("\n")
        .map((line) => line.split("/")[0]),
    );
    expect([...services].sort()).toEqual([
      "grpc.health.v1.Health",
      "grpc.reflection.v1.ServerReflection",
      "segments.v1.AccessService",
      "segments.v1.MembershipService",
      "segments.v1.SegmentService",
    ]);
    expect(stdout).toContain("segments.v1.MembershipService/CheckMembership");
  });

  it("runs the README's buf curl session as written", async () => {
    const readme = await readFile("README.md", "utf8");
    const block = /<!-- session:start -->\n```sh\n([\s\S]*?)```\n<!-- session:end -->/.exec(readme)?.[1];
    expect(block, "README has a session block").toBeDefined();
    const script = `set -euo pipefail\n${(block ?? "").replaceAll("127.0.0.1:50051", main.address)}`;
    const { stdout, stderr } = await run("bash", ["-c", script]);
    expect(stdout).toContain("segments.v1.SegmentService/CreateSegment");
    expect(stdout).toMatch(/"member": true/);
    expect(stdout.replace(/\s+/g, "")).toContain('"members":[true,false,true]');
    // buf curl prints a failed call's status on stderr.
    expect(stderr).toContain('"code": "invalid_argument"');
  });

  it("serves /healthz and Prometheus /metrics on the HTTP port", async () => {
    const base = `http://127.0.0.1:${main.httpPort}`;
    const healthz = await fetch(`${base}/healthz`);
    expect(healthz.status).toBe(200);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    // The README session above added alice, bob and carol and removed bob.
    expect(metrics).toContain("segments_users 3\n");
    expect(metrics).toContain("segments_members 2\n");
    expect(metrics).toContain(
      'grpc_server_handled_total{grpc_service="segments.v1.SegmentService",grpc_method="AddMembers",grpc_type="unary",grpc_code="OK"} 1\n',
    );
    expect((await fetch(`${base}/nope`)).status).toBe(404);
  });

  it("reports NOT_SERVING, then stops within the grace period on SIGTERM despite an open stream", async () => {
    const health = createClient(Health, main.address);
    expect((await health.check({ service: "" })).status).toBe(Serving.SERVING);
    const seen: Serving[] = [];
    const watching = (async () => {
      try {
        for await (const update of health.watch({ service: "segments.v1.MembershipService" })) seen.push(update.status);
      } catch {
        // The forced shutdown cancels the stream; that is the point.
      }
    })();
    await expect.poll(() => seen.length).toBe(1);
    expect(await main.stop("SIGTERM")).toBe(0);
    await watching;
    health.close();
    expect(seen).toEqual([Serving.SERVING, Serving.NOT_SERVING]);
    expect(main.logs.map((l) => l.msg)).toEqual(expect.arrayContaining(["shutting down", "stopped"]));
  });
});

describe("configuration errors", () => {
  it("exits with status 2 naming the variable", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
      env: { PATH: process.env.PATH ?? "", GRPC_PORT: "seventy" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const code = await new Promise((resolve) => child.once("exit", resolve));
    expect(code).toBe(2);
    expect(stderr).toContain("GRPC_PORT must be an integer from 0 to 65535");
  });
});
