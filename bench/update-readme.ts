/**
 * Rewrites the results section of bench/README.md (between its markers) from a run's JSON.
 * Run directly to regenerate from a saved file: `tsx bench/update-readme.ts bench/results/full.json`.
 */
import { readFile, writeFile } from "node:fs/promises";
import { pathToFileURL } from "node:url";
import { markdownTable, type RunResult } from "./lib/report.js";

const README = new URL("./README.md", import.meta.url);
/** Each named run (full, directory, …) has its own block in the README. */
const markers = (name: string) => ({ START: `<!-- results:${name}:start -->`, END: `<!-- results:${name}:end -->` });

/** Replaces the README's results block with `result`. */
export async function updateReadme(result: RunResult): Promise<void> {
  const { START, END } = markers(result.name);
  const text = await readFile(README, "utf8");
  const from = text.indexOf(START);
  const to = text.indexOf(END);
  if (from < 0 || to < from) throw new Error(`bench/README.md lacks the ${START} … ${END} markers`);
  const m = result.machine;
  const skipped = result.skipped.length === 0 ? "" : `\nSkipped baselines: ${result.skipped.join("; ")}.\n`;
  const block = [
    START,
    `Run \`${result.name}\` of ${result.startedAt} (${result.durationS} s): ${m.cpus} × ${m.cpuModel}, ${m.memoryGiB} GiB, Node ${m.node}, ${m.platform}.`,
    `Dataset: ${JSON.stringify(result.dataset)}. Options: ${JSON.stringify(result.options)}.`,
    skipped,
    markdownTable(result.rows),
    END,
  ].join("\n");
  await writeFile(README, text.slice(0, from) + block + text.slice(to + END.length));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const file = process.argv[2] ?? new URL("./results/full.json", import.meta.url).pathname;
  updateReadme(JSON.parse(await readFile(file, "utf8")) as RunResult).then(
    () => process.stdout.write(`bench/README.md updated from ${file}\n`),
    (error: unknown) => {
      process.stderr.write(`${String(error)}\n`);
      process.exit(1);
    },
  );
}
