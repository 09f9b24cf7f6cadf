/**
 * A progress bar on stderr (cli-progress): done / total with a rate and an ETA when the total is
 * known, else a running count. When stderr is not a terminal it prints a plain line every second,
 * so logs and tests see progress too.
 */
import { SingleBar } from "cli-progress";

/** A started bar for `task`, counting `unit` up to `total` (unknown: undefined). */
export function progressBar(task: string, total: number | undefined, unit: "bytes" | "ids") {
  const known = total !== undefined && total > 0;
  const counts = unit === "bytes" ? "{ids} ids, {value}/{total} bytes" : "{value}/{total} ids";
  const bar = new SingleBar({
    format: known
      ? `${task} [{bar}] {percentage}% | ${counts} | {rate} ${unit}/s | ETA {eta_formatted}`
      : `${task} | ${counts.replace("/{total}", "")} | {rate} ${unit}/s`,
    stream: process.stderr,
    noTTYOutput: true,
    notTTYSchedule: 1_000,
    hideCursor: true,
    clearOnComplete: false,
    etaBuffer: 50,
  });
  const started = performance.now();
  bar.start(known ? total : 0, 0, { ids: 0, rate: 0 });
  return {
    update(value: number, extra: { ids?: number } = {}): void {
      const seconds = (performance.now() - started) / 1000;
      bar.update(value, { ...extra, rate: seconds > 0 ? Math.round(value / seconds) : 0 });
    },
    stop(): void {
      bar.stop();
    },
  };
}
