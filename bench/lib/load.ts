/** Drives a target from separate processes and merges their latency histograms. */
import { type ChildProcess, fork } from "node:child_process";
import { decodeFromCompressedBase64 } from "hdr-histogram-js";
import { latencyHistogram } from "./histogram.js";
import type { Target, WorkerJob, WorkerReport } from "./load-worker.js";
import { processCpuMs } from "./process-cpu.js";

/** The outcome of one load measurement. */
export interface LoadResult {
  callsPerSecond: number;
  p50Us: number;
  p99Us: number;
  p999Us: number;
  calls: number;
  /** Failed calls by status code (gRPC) or error code. */
  errors: Record<string, number>;
  /**
   * CPU time (user + system, all threads) the server process spent per measured call, in µs:
   * only when `serverPid` was given.
   */
  serverCpuUsPerCall?: number;
}

/** How a load is shaped; with `serverPid`, the server's CPU per call is measured too. */
export interface LoadShape {
  workers: number;
  concurrency: number;
  durationMs: number;
  users: number;
  seed: number;
  serverPid?: number | undefined;
}

/** Runs `workers` processes × `concurrency` loops against `target`. */
export async function runLoad(target: Target, shape: LoadShape): Promise<LoadResult> {
  const warmupMs = Math.min(1_000, Math.round(shape.durationMs / 4));
  const workers = await Promise.all(
    Array.from({ length: shape.workers }, (_, i) =>
      startWorker({
        target,
        concurrency: shape.concurrency,
        warmupMs,
        durationMs: shape.durationMs,
        users: shape.users,
        seed: shape.seed + i,
      }),
    ),
  );
  // Every worker is connected and has made its first call: start their clocks together, so the
  // measured windows coincide and the server's CPU can be read at the window's edges.
  for (const worker of workers) worker.child.send("go");
  const cpu = shape.serverPid === undefined ? undefined : sampleWindow(shape.serverPid, warmupMs, shape.durationMs);
  const reports = await Promise.all(workers.map((worker) => worker.report));
  const window = await cpu;
  const merged = latencyHistogram();
  for (const report of reports) merged.add(decodeFromCompressedBase64(report.histogram));
  const errors: Record<string, number> = {};
  for (const report of reports) for (const [code, n] of Object.entries(report.errors)) errors[code] = (errors[code] ?? 0) + n;
  const calls = reports.reduce((sum, r) => sum + r.calls, 0);
  const callsPerSecond = calls / (shape.durationMs / 1000);
  return {
    callsPerSecond,
    p50Us: merged.getValueAtPercentile(50),
    p99Us: merged.getValueAtPercentile(99),
    p999Us: merged.getValueAtPercentile(99.9),
    calls,
    errors,
    // CPU per wall second over calls per second: a timer that fires a little late stretches the
    // CPU window, not the call count's.
    ...(window === undefined || calls === 0 ? {} : { serverCpuUsPerCall: ((window.cpuMs / window.wallMs) * 1e6) / callsPerSecond }),
  };
}

/** The server's CPU time over the workers' measured window (warm-up excluded). */
async function sampleWindow(pid: number, warmupMs: number, durationMs: number): Promise<{ cpuMs: number; wallMs: number }> {
  await sleep(warmupMs);
  const [cpu0, t0] = [await processCpuMs(pid), performance.now()];
  await sleep(durationMs);
  const [cpu1, t1] = [await processCpuMs(pid), performance.now()];
  return { cpuMs: cpu1 - cpu0, wallMs: t1 - t0 };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Forks a worker and resolves once it is connected and waiting for "go". */
function startWorker(job: WorkerJob): Promise<{ child: ChildProcess; report: Promise<WorkerReport> }> {
  return new Promise((ready, failed) => {
    // LOAD_NODE_ARGS: extra node flags for the load workers, as SERVICE_NODE_ARGS is for the
    // service (e.g. "--cpu-prof --cpu-prof-dir=DIR" to see what a client spends per call).
    const extra = (process.env.LOAD_NODE_ARGS ?? "").split(" ").filter((arg) => arg !== "");
    const child = fork(new URL("./load-worker.ts", import.meta.url), [], {
      execArgv: ["--import", "tsx", ...extra],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    let report: WorkerReport | undefined;
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    child.on("message", (message) => {
      if (message === "ready")
        ready({ child, report: exited.then((code) => report ?? Promise.reject(new Error(`load worker exited with ${code}`))) });
      else report = message as WorkerReport;
    });
    exited.then((code) => failed(new Error(`load worker exited with ${code} before it was ready`)));
    child.send(job);
  });
}
