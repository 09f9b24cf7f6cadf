/**
 * embedded-start: what the zero-setup store costs at rest. The service starts on a fresh PGlite
 * directory (the first start, which creates the database), is stopped, and starts again on it;
 * each time, resident memory once it serves (after a 2 s settle) and the time to serving. The
 * baseline is the same service's later start: the first one should cost no more. Medians of
 * `--start-rounds` rounds. Runs on PGlite whatever `--store` says; needs no dataset.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Row } from "../lib/report.js";
import { type ServiceProcess, spawnService } from "../lib/service-process.js";

const SETTLE_MS = 2_000;

/** First and later starts on a fresh PGlite directory: RSS and time to serving. */
export async function embeddedStart(log: (line: string) => void, rounds: number): Promise<Row[]> {
  const first: Sample[] = [];
  const later: Sample[] = [];
  for (let round = 0; round < rounds; round++) {
    const dir = await mkdtemp(join(tmpdir(), "segments-bench-start-"));
    try {
      first.push(await sample(await spawnService({ DATA_DIR: dir })));
      later.push(await sample(await spawnService({ DATA_DIR: dir })));
      log(`  round ${round + 1}: first start ${describe(first[round])}; later start ${describe(later[round])}`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  const row = (figure: string, unit: string, pick: (s: Sample) => number): Row => ({
    scenario: "embedded-start",
    figure,
    unit,
    better: "lower",
    ours: median(first.map(pick)),
    baseline: "the same service's later start on the same directory",
    baselineValue: median(later.map(pick)),
  });
  return [
    row("PGlite, RSS once serving, first start (creates the database)", "MB", (s) => s.rssMb),
    row("PGlite, time to serving, first start (creates the database)", "s", (s) => s.readyS),
  ];
}

interface Sample {
  rssMb: number;
  readyS: number;
}

async function sample(service: ServiceProcess): Promise<Sample> {
  try {
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    const rss = (await service.metrics()).get("process_resident_memory_bytes") ?? Number.NaN;
    return { rssMb: rss / 2 ** 20, readyS: service.readyMs / 1000 };
  } finally {
    await service.stop();
  }
}

function describe(s: Sample | undefined): string {
  return s === undefined ? "?" : `${Math.round(s.rssMb)} MB, serving after ${s.readyS.toFixed(1)} s`;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}
