/**
 * Start-up at the edges: ports bind before the store loads (NOT_SERVING and UNAVAILABLE until it
 * has), a taken port or an unreachable Postgres fails at once with what and why, and a PGlite
 * data directory is used by one process only and must be writable.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { chmod, mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status as grpcStatus } from "@grpc/grpc-js";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ENTRY, spawnService } from "../../bench/lib/service-process.js";
import { type App, startApp } from "../../src/app.js";
import { createClient } from "../../src/client/client.js";
import { loadConfig } from "../../src/config.js";
import { Health, HealthCheckResponse_ServingStatus as Serving } from "../../src/gen/grpc/health/v1/health_pb.js";
import { MembershipService } from "../../src/gen/segments/v1/membership_service_pb.js";
import { createLogger } from "../../src/logging.js";
import { failure } from "../support/status.js";
import { STORES, type TestStore } from "../support/stores.js";

/** How a process that was expected to fail at start ended. */
interface Ended {
  code: number | null;
  stderr: string;
  logs: string;
}

/** Processes started here, killed after the file in case a failing test left one running. */
const children = new Set<ChildProcess>();
afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
});

/** Runs the entry point with `env` until it exits. */
function runToExit(env: Record<string, string>, options: { uid?: number; gid?: number } = {}): Promise<Ended> {
  const child: ChildProcess = spawn(process.execPath, [...ENTRY.source], {
    env: { PATH: process.env.PATH ?? "", GRPC_PORT: "0", HTTP_PORT: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
    ...options,
  });
  children.add(child);
  let stderr = "";
  let logs = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  child.stdout?.on("data", (chunk: Buffer) => {
    logs += chunk.toString();
  });
  return new Promise((resolve) => child.once("exit", (code) => resolve({ code, stderr, logs })));
}

/** A TCP port held open by this test process. */
async function holdPort(): Promise<{ port: number; server: Server }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  return { port: address.port, server };
}

describe("start-up failures", () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "segments-startup-"));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it.each(["GRPC_PORT", "HTTP_PORT"])(
    "a taken %s fails with exit 1 naming the port, before the store is opened",
    async (variable) => {
      const { port, server } = await holdPort();
      try {
        const ended = await runToExit({ DATA_DIR: join(dataDir, variable), [variable]: String(port) });
        expect(ended.code).toBe(1);
        expect(ended.stderr).toContain(`127.0.0.1:${port}`);
        expect(ended.stderr).toContain("cannot listen");
        expect(ended.logs).not.toContain("using embedded PGlite");
      } finally {
        server.close();
      }
    },
    60_000,
  );

  it("an unreachable Postgres fails with exit 1 naming host, port and cause, password redacted", async () => {
    const { port, server } = await holdPort();
    // Nothing listens once the holder closes: a port that refuses connections.
    await new Promise((resolve) => server.close(resolve));
    const ended = await runToExit({ DATABASE_URL: `postgres://app:s3cret@127.0.0.1:${port}/segments?sslpassword=k3y` });
    expect(ended.code).toBe(1);
    expect(ended.stderr).toContain(`cannot connect to Postgres at postgres://app:***@127.0.0.1:${port}/segments`);
    expect(ended.stderr).toContain("ECONNREFUSED");
    expect(ended.stderr + ended.logs).not.toMatch(/s3cret|k3y|\[object Object\]/);
  }, 60_000);

  it("a DATA_DIR this user cannot write fails with exit 1 naming the directory and the OS error", async () => {
    const dir = join(dataDir, "read-only");
    await mkdir(dir);
    // root writes anywhere, so as root the service runs as nobody; otherwise the mode suffices.
    const asRoot = process.getuid?.() === 0;
    if (!asRoot) await chmod(dir, 0o555);
    const ended = await runToExit({ DATA_DIR: dir }, asRoot ? { uid: 65534, gid: 65534 } : {});
    await chmod(dir, 0o755);
    expect(ended.code).toBe(1);
    expect(ended.stderr).toContain(`DATA_DIR ${dir} is not writable (EACCES)`);
    expect(ended.stderr).not.toContain("[object Object]");
  }, 60_000);
});

describe("the DATA_DIR lock", () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "segments-lock-"));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it("refuses a second process on the same directory, naming the holder, and is released on stop", async () => {
    const first = await spawnService({ DATA_DIR: dataDir, SHUTDOWN_GRACE_MS: "500" }, ENTRY.source);
    children.add(first.child);
    try {
      const second = await runToExit({ DATA_DIR: dataDir });
      expect(second.code).toBe(1);
      expect(second.stderr).toContain(`is in use by process ${first.child.pid}`);
    } finally {
      expect(await first.stop("SIGTERM")).toBe(0);
    }
    expect(await readdir(dataDir)).not.toContain("segments.lock");
  }, 120_000);

  it("takes over a lock left by a process that is gone", async () => {
    const gone = spawn(process.execPath, ["-e", ""]);
    await new Promise((resolve) => gone.once("exit", resolve));
    await writeFile(join(dataDir, "segments.lock"), `${gone.pid}\n`);
    const service = await spawnService({ DATA_DIR: dataDir, SHUTDOWN_GRACE_MS: "500" }, ENTRY.source);
    expect(await service.stop("SIGTERM")).toBe(0);
  }, 120_000);
});

describe("while the state loads", () => {
  const postgres = STORES.filter((kind) => kind.name === "postgres");
  let store: TestStore;
  let blocker: pg.Client;
  beforeAll(async () => {
    const [kind] = postgres;
    if (kind === undefined) throw new Error("no postgres store kind in test/support/stores.ts");
    store = await kind.create();
    blocker = new pg.Client({ connectionString: store.env.DATABASE_URL });
    await blocker.connect();
  });
  afterAll(async () => {
    await blocker.end();
    await store.drop();
  });

  it("ports are bound, health is NOT_SERVING and calls get UNAVAILABLE; then SERVING", async () => {
    // Holding the migration lock keeps start-up in its loading phase for as long as we like.
    await blocker.query("SELECT pg_advisory_lock(7418820563)");
    let announce: (ports: { port: number; httpPort: number }) => void = () => undefined;
    const listening = new Promise<{ port: number; httpPort: number }>((resolve) => {
      announce = resolve;
    });
    const log = createLogger(
      { level: "info" },
      {
        write: (line: string) => {
          const entry = JSON.parse(line) as { msg: string; port: number; httpPort: number };
          if (entry.msg === "listening; loading state") announce(entry);
        },
      },
    );
    const config = loadConfig({ GRPC_PORT: "0", HTTP_PORT: "0", SHUTDOWN_GRACE_MS: "500", ...store.env });
    const starting = startApp(config, log);
    const { port, httpPort } = await listening;
    const address = `127.0.0.1:${port}`;
    const health = createClient(Health, address);
    const membership = createClient(MembershipService, address);
    let app: App | undefined;
    try {
      expect((await health.check({ service: "" })).status).toBe(Serving.NOT_SERVING);
      expect((await health.check({ service: "segments.v1.MembershipService" })).status).toBe(Serving.NOT_SERVING);
      expect((await fetch(`http://127.0.0.1:${httpPort}/healthz`)).status).toBe(503);
      const refused = await failure(membership.checkMembership({ userId: "alice", segmentIds: ["x"] }));
      expect(refused.code).toBe(grpcStatus.UNAVAILABLE);
      expect(refused.details).toBe("starting; state is loading");
      await blocker.query("SELECT pg_advisory_unlock(7418820563)");
      app = await starting;
      expect(app.grpcPort).toBe(port);
      expect((await health.check({ service: "" })).status).toBe(Serving.SERVING);
      expect((await fetch(`http://127.0.0.1:${httpPort}/healthz`)).status).toBe(200);
    } finally {
      await blocker.query("SELECT pg_advisory_unlock_all()");
      health.close();
      membership.close();
      await (app ?? (await starting)).close();
    }
  }, 60_000);
});
