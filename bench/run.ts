/**
 * `npm run bench`: runs the selected scenarios against the service and its baselines on one
 * dataset, prints the table, writes bench/results/<name>.json, and on request refreshes
 * bench/README.md. Method and figures: bench/README.md.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { type BenchContext, setUp } from "./lib/context.js";
import { parseOptions, type Scenario } from "./lib/options.js";
import { machine, markdownTable, type Row, type RunResult, writeResult } from "./lib/report.js";
import { bulk } from "./scenarios/bulk.js";
import { check } from "./scenarios/check.js";
import { importScenario } from "./scenarios/import.js";
import { memory } from "./scenarios/memory.js";
import { restart } from "./scenarios/restart.js";
import { subtractScenario } from "./scenarios/subtract.js";
import { updateReadme } from "./update-readme.js";

// Runs in this order: memory reads the three dataset segments before import and subtract add
// more; restart, which replaces the process, comes last.
const SCENARIO_RUNNERS: Record<Scenario, (ctx: BenchContext, log: (line: string) => void) => Promise<Row[]>> = {
  bulk,
  check,
  memory,
  import: importScenario,
  subtract: subtractScenario,
  restart,
};

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const started = Date.now();
  const log = (line: string) => process.stderr.write(`[bench ${((Date.now() - started) / 1000).toFixed(1)}s] ${line}\n`);
  log(
    `${options.name}: ${options.users.toLocaleString("en-US")} users, scenarios ${options.scenarios.join(", ")}, store ${options.store}, seed ${options.seed}`,
  );
  const ctx = await setUp(options, log);
  const rows: Row[] = [];
  try {
    for (const scenario of Object.keys(SCENARIO_RUNNERS) as Scenario[]) {
      if (!options.scenarios.includes(scenario)) continue;
      log(`scenario ${scenario}`);
      rows.push(...(await SCENARIO_RUNNERS[scenario](ctx, log)));
    }
  } finally {
    await ctx.close();
  }
  const { redisUrl: _redis, databaseUrl: _database, resultsDir: _dir, ...shown } = options;
  const result: RunResult = {
    name: options.name,
    startedAt: new Date(started).toISOString(),
    durationS: Math.round((Date.now() - started) / 100) / 10,
    machine: machine(),
    options: shown,
    dataset: {
      users: options.users,
      store: ctx.store,
      segments: ctx.segments.map((s) => ({ key: s.spec.key, members: s.spec.size, description: s.spec.description })),
    },
    skipped: ctx.skipped,
    rows,
  };
  await mkdir(options.resultsDir, { recursive: true });
  const files = [join(options.resultsDir, `${options.name}.json`), ...(options.jsonFile === "" ? [] : [options.jsonFile])];
  await writeResult(result, files);
  process.stdout.write(`\n${markdownTable(rows)}\n\n`);
  for (const reason of ctx.skipped) process.stdout.write(`Skipped baseline: ${reason}\n`);
  process.stdout.write(`${result.durationS} s; results in ${files.join(", ")}\n`);
  if (options.updateReadme) {
    await updateReadme(result);
    log("bench/README.md updated");
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
