/** Drives a target from separate processes and merges their latency histograms. */
import { fork } from "node:child_process";
import { decodeFromCompressedBase64 } from "hdr-histogram-js";
import { latencyHistogram } from "./histogram.js";
import type { Target, WorkerJob, WorkerReport } from "./load-worker.js";

/** The outcome of one load measurement. */
export interface LoadResult {
  callsPerSecond: number;
  p50Us: number;
  p99Us: number;
  p999Us: number;
  calls: number;
  /** Failed calls by status code (gRPC) or error code. */
  errors: Record<string, number>;
}

/** Runs `workers` processes × `concurrency` loops against `target`. */
export async function runLoad(
  target: Target,
  shape: { workers: number; concurrency: number; durationMs: number; users: number; seed: number },
): Promise<LoadResult> {
  const warmupMs = Math.min(1_000, Math.round(shape.durationMs / 4));
  const reports = await Promise.all(
    Array.from({ length: shape.workers }, (_, i) =>
      runWorker({
        target,
        concurrency: shape.concurrency,
        warmupMs,
        durationMs: shape.durationMs,
        users: shape.users,
        seed: shape.seed + i,
      }),
    ),
  );
  const merged = latencyHistogram();
  for (const report of reports) merged.add(decodeFromCompressedBase64(report.histogram));
  const errors: Record<string, number> = {};
  for (const report of reports) for (const [code, n] of Object.entries(report.errors)) errors[code] = (errors[code] ?? 0) + n;
  const calls = reports.reduce((sum, r) => sum + r.calls, 0);
  return {
    callsPerSecond: calls / (shape.durationMs / 1000),
    p50Us: merged.getValueAtPercentile(50),
    p99Us: merged.getValueAtPercentile(99),
    p999Us: merged.getValueAtPercentile(99.9),
    calls,
    errors,
  };
}

function runWorker(job: WorkerJob): Promise<WorkerReport> {
  return new Promise((resolve, reject) => {
    const child = fork(new URL("./load-worker.ts", import.meta.url), [], {
      execArgv: ["--import", "tsx"],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    let report: WorkerReport | undefined;
    child.once("message", (message) => {
      report = message as WorkerReport;
    });
    child.once("exit", (code) => (report !== undefined ? resolve(report) : reject(new Error(`load worker exited with ${code}`))));
    child.send(job);
  });
}
