/**
 * The production image's exact commands, outside Docker (there is no daemon here): the build
 * stage's RUN lines in a copy of what it COPYs, then the final stage's CMD with its ENV, its
 * HEALTHCHECK command, and the CLI it ships. System steps (apt-get, links under /usr/local, the
 * /data volume's owner) are skipped: they need root and change nothing the service reads.
 */
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cp, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);

/** The parts of the Dockerfile the test runs. */
interface Image {
  buildCopies: string[];
  buildRuns: string[];
  env: Record<string, string>;
  cmd: string[];
  healthcheck: string[];
  expose: string[];
}

function parseDockerfile(text: string): Image {
  const lines = text
    .replace(/\\\n\s*/g, " ")
    .split("\n")
    .map((l) => l.trim());
  const stages: string[][] = [];
  for (const line of lines) {
    if (line.startsWith("FROM ")) stages.push([]);
    else if (line !== "" && !line.startsWith("#")) stages.at(-1)?.push(line);
  }
  const [build = [], final = []] = stages;
  const json = (line: string | undefined) => JSON.parse(line?.slice(line.indexOf("[")) ?? "[]") as string[];
  const env: Record<string, string> = {};
  for (const line of final.filter((l) => l.startsWith("ENV "))) {
    for (const pair of line.slice(4).trim().split(/\s+/)) env[pair.slice(0, pair.indexOf("="))] = pair.slice(pair.indexOf("=") + 1);
  }
  return {
    buildCopies: build.filter((l) => l.startsWith("COPY ")).flatMap((l) => l.slice(5).trim().split(/\s+/).slice(0, -1)),
    buildRuns: build.filter((l) => l.startsWith("RUN ") && !l.includes("apt-get")).map((l) => l.slice(4)),
    env,
    cmd: json(final.find((l) => l.startsWith("CMD "))),
    healthcheck: json(final.find((l) => l.startsWith("HEALTHCHECK "))),
    expose: final.filter((l) => l.startsWith("EXPOSE ")).flatMap((l) => l.slice(7).trim().split(/\s+/)),
  };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe("the production image's commands", () => {
  let image: Image;
  let app: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    image = parseDockerfile(await readFile("Dockerfile", "utf8"));
    app = await mkdtemp(join(tmpdir(), "segments-image-"));
    for (const source of image.buildCopies) await cp(source, join(app, source), { recursive: true });
    for (const command of image.buildRuns) await run("bash", ["-c", command], { cwd: app, maxBuffer: 64 << 20 });
    const data = join(app, "data-volume");
    await mkdir(data);
    env = {
      PATH: process.env.PATH ?? "",
      ...image.env,
      DATA_DIR: data,
      GRPC_PORT: String(await freePort()),
      HTTP_PORT: String(await freePort()),
    };
  }, 600_000);
  afterAll(async () => {
    await rm(app, { recursive: true, force: true });
  });

  it("runs Node 22 pinned by digest, declares both ports and a health check, and binds every address", async () => {
    expect(await readFile("Dockerfile", "utf8")).toMatch(/^ARG NODE_IMAGE=node:22-bookworm-slim@sha256:[0-9a-f]{64}$/m);
    expect(image.expose).toEqual(["50051", "9464"]);
    expect([image.env.GRPC_PORT, image.env.HTTP_PORT, image.env.GRPC_HOST]).toEqual(["50051", "9464", "0.0.0.0"]);
    expect(image.healthcheck.length).toBeGreaterThan(0);
  });

  it("refuses to start on 0.0.0.0 without a token", async () => {
    const failed = await run(image.cmd[0] ?? "node", image.cmd.slice(1), { cwd: app, env }).then(
      () => undefined,
      (e: unknown) => e as { code: number; stderr: string },
    );
    expect(failed?.code).toBe(1);
    expect(failed?.stderr).toContain("not a loopback address and no API token");
  }, 120_000);

  it("serves with a token, passes its health check, and ships the CLI", async () => {
    const token = randomBytes(32).toString("hex");
    const withToken = { ...env, ADMIN_TOKEN: token };
    const child = spawn(image.cmd[0] ?? "node", image.cmd.slice(1), { cwd: app, env: withToken, stdio: ["ignore", "pipe", "pipe"] });
    try {
      let logs = "";
      child.stdout.on("data", (chunk: Buffer) => {
        logs += chunk.toString();
      });
      await expect.poll(() => logs.includes('"msg":"serving gRPC"'), { timeout: 60_000 }).toBe(true);
      const health = await run(image.healthcheck[0] ?? "node", image.healthcheck.slice(1), { cwd: app, env: withToken });
      expect(health.stderr).toBe("");
      const who = await run("node", ["dist/cli/main.js", "--json", "whoami"], {
        cwd: app,
        env: { PATH: env.PATH ?? "", SEGMENTS_ADDRESS: `127.0.0.1:${env.GRPC_PORT}`, SEGMENTS_TOKEN: token },
      });
      expect(JSON.parse(who.stdout)).toMatchObject({ authenticated: true, name: "ADMIN_TOKEN", role: "admin" });
    } finally {
      child.kill("SIGTERM");
      await new Promise((resolve) => child.once("exit", resolve));
    }
    // Stopped: the health check fails.
    await expect(run(image.healthcheck[0] ?? "node", image.healthcheck.slice(1), { cwd: app, env: withToken })).rejects.toThrow();
  }, 120_000);
});
