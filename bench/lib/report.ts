/** Result rows, the markdown table, and the JSON file of a run. */
import { writeFile } from "node:fs/promises";
import os from "node:os";
import type { BenchOptions } from "./options.js";

/** One figure of ours next to one baseline's. */
export interface Row {
  scenario: string;
  figure: string;
  unit: string;
  /** Which direction is better for this figure. */
  better: "higher" | "lower";
  ours: number;
  baseline: string;
  /** Undefined when the baseline was skipped. */
  baselineValue: number | undefined;
}

/** A whole run, as written to bench/results/<name>.json. */
export interface RunResult {
  name: string;
  startedAt: string;
  durationS: number;
  machine: { cpus: number; cpuModel: string; memoryGiB: number; node: string; platform: string };
  options: Omit<BenchOptions, "redisUrl" | "databaseUrl" | "resultsDir">;
  dataset: Record<string, unknown>;
  skipped: string[];
  rows: Row[];
}

/** Facts about this machine for the results file. */
export function machine(): RunResult["machine"] {
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? "unknown",
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
  };
}

/** ours ÷ baseline, as "1.23×"; "—" when there is no baseline figure. */
export function ratio(row: Row): string {
  if (row.baselineValue === undefined || row.baselineValue === 0) return "—";
  return `${formatNumber(row.ours / row.baselineValue)}×`;
}

/** The results as a markdown table. */
export function markdownTable(rows: readonly Row[]): string {
  const lines = ["| scenario | figure | better | ours | baseline | baseline value | ours ÷ baseline |", "|---|---|---|---:|---|---:|---:|"];
  for (const row of rows) {
    const value = row.baselineValue === undefined ? "skipped" : `${formatNumber(row.baselineValue)} ${row.unit}`;
    lines.push(
      `| ${row.scenario} | ${row.figure} | ${row.better} | ${formatNumber(row.ours)} ${row.unit} | ${row.baseline} | ${value} | ${ratio(row)} |`,
    );
  }
  return lines.join("\n");
}

/** Writes the run's JSON to each of `files`. */
export async function writeResult(result: RunResult, files: readonly string[]): Promise<void> {
  const text = `${JSON.stringify(result, null, 2)}\n`;
  for (const file of files) await writeFile(file, text);
}

function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  return value.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}
