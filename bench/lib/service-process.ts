/**
 * The service as a child process: spawned with an environment, ready once it logs "serving gRPC",
 * stopped with a signal. The bench drives it this way so load generation never shares its event
 * loop; the process tests use it to exercise the real entry point.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { appendFileSync } from "node:fs";
import { createInterface } from "node:readline";

/** A running service process. */
export interface ServiceProcess {
  child: ChildProcess;
  grpcPort: number;
  httpPort: number;
  /** host:port of the gRPC server. */
  address: string;
  /** Every JSON log line so far. */
  logs: Record<string, unknown>[];
  /** Milliseconds from spawn to "serving gRPC". */
  readyMs: number;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
  /** Sends `signal` (default SIGTERM) and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** The numeric samples of /metrics, by name with labels. */
  metrics(): Promise<Map<string, number>>;
}

/**
 * How to run the entry point: the compiled build (bench) or the TypeScript source (tests).
 * SERVICE_ENTRY names another compiled entry for the bench, to compare two builds in one sitting
 * (e.g. an earlier commit's dist/, copied outside the repo with a node_modules link beside it).
 */
export const ENTRY = {
  dist: [process.env.SERVICE_ENTRY ?? "dist/main.js"],
  source: ["--import", "tsx", "src/main.ts"],
} as const;

/**
 * Starts the service with `env` on free ports and resolves once it serves. SERVICE_NODE_ARGS,
 * when set, are extra node flags for the child (split on spaces): `SERVICE_NODE_ARGS="--cpu-prof
 * --cpu-prof-dir=/tmp/prof" npm run bench -- …` profiles the service under the bench's load.
 * SERVICE_LOG, when set, names a file every line of the service's stdout is appended to (its log,
 * and what `SERVICE_NODE_ARGS=--trace-gc` prints).
 */
export async function spawnService(env: Record<string, string>, entry: readonly string[] = ENTRY.dist): Promise<ServiceProcess> {
  const started = performance.now();
  const nodeArgs = (process.env.SERVICE_NODE_ARGS ?? "").split(" ").filter((arg) => arg !== "");
  const child = spawn(process.execPath, [...nodeArgs, ...entry], {
    env: { PATH: process.env.PATH ?? "", GRPC_PORT: "0", HTTP_PORT: "0", LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  // SERVICE_CPUS (a taskset list, e.g. "0"): the service's threads run on those cores only. With
  // the bench itself started under `taskset -c 1`, load and service stop competing for a core.
  if (process.env.SERVICE_CPUS !== undefined && child.pid !== undefined) {
    execFileSync("taskset", ["-a", "-p", "-c", process.env.SERVICE_CPUS, String(child.pid)], { stdio: "ignore" });
  }
  const logs: Record<string, unknown>[] = [];
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4_000);
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const copyTo = process.env.SERVICE_LOG;
  const serving = await new Promise<Record<string, unknown>>((resolve, reject) => {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      if (copyTo !== undefined) appendFileSync(copyTo, `${line}\n`);
      const entry = parseLog(line);
      logs.push(entry);
      if (entry.msg === "serving gRPC") resolve(entry);
    });
    exited.then((code) => reject(new Error(`service exited with ${code} before serving:\n${stderr}`)));
  });
  const grpcPort = serving.port as number;
  const httpPort = serving.httpPort as number;
  return {
    child,
    grpcPort,
    httpPort,
    address: `127.0.0.1:${grpcPort}`,
    logs,
    readyMs: performance.now() - started,
    exited,
    stop: async (signal = "SIGTERM") => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
    metrics: async () => parseMetrics(await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text()),
  };
}

function parseLog(line: string): Record<string, unknown> {
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return { msg: line };
  }
}

function parseMetrics(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const space = line.lastIndexOf(" ");
    samples.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return samples;
}
