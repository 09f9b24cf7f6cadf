/**
 * `npm run bench`: runs the selected scenarios against the service and its baselines on one
 * dataset, prints the table, writes bench/results/<name>.json, and on request refreshes
 * bench/README.md. Method and figures: bench/README.md.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { directoryScenario } from "./directory.js";
import { type BenchContext, setUp } from "./lib/context.js";
import { parseOptions, type Scenario } from "./lib/options.js";
import { machine, markdownTable, type Row, type RunResult, writeResult } from "./lib/report.js";
import { audienceScenario } from "./scenarios/audience.js";
import { authScenario } from "./scenarios/auth.js";
import { batchCheck } from "./scenarios/batch-check.js";
import { bulk } from "./scenarios/bulk.js";
import { check } from "./scenarios/check.js";
import { embeddedStart } from "./scenarios/embedded-start.js";
import { evaluateScenario } from "./scenarios/evaluate.js";
import { eventsScenario } from "./scenarios/events.js";
import { importScenario } from "./scenarios/import.js";
import { importCheck } from "./scenarios/import-check.js";
import { listUserSegments } from "./scenarios/list-user-segments.js";
import { memory } from "./scenarios/memory.js";
import { metricsCostScenario } from "./scenarios/metrics-cost.js";
import { newUsers } from "./scenarios/new-users.js";
import { replicaScenario } from "./scenarios/replica.js";
import { restart } from "./scenarios/restart.js";
import { subtractScenario } from "./scenarios/subtract.js";
import { updateReadme } from "./update-readme.js";

// The scenarios that drive the running service, in this order: memory reads the three dataset
// segments before import and subtract add more; restart replaces the process; batch-check reads
// only and audience adds seven segments (six of users/10 members, one EVERYONE) after restart has
// counted what it restores; replica adds 2,000 users to the sparse segment; import-check, which adds 2–3M users and imported segments,
// new-users, which adds up to 5M, and list-user-segments, which adds 10,000 segments, come last so they change none of the other figures.
const SERVICE_SCENARIOS: Record<
  Exclude<Scenario, "directory" | "embedded-start">,
  (ctx: BenchContext, log: (line: string) => void) => Promise<Row[]>
> = {
  bulk,
  check,
  memory,
  import: importScenario,
  subtract: subtractScenario,
  restart,
  "batch-check": batchCheck,
  audience: audienceScenario,
  replica: replicaScenario,
  "import-check": importCheck,
  "new-users": newUsers,
  events: eventsScenario,
  evaluate: evaluateScenario,
  "list-user-segments": listUserSegments,
  auth: authScenario,
  "metrics-cost": metricsCostScenario,
};

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const started = Date.now();
  const log = (line: string) => process.stderr.write(`[bench ${((Date.now() - started) / 1000).toFixed(1)}s] ${line}\n`);
  log(
    `${options.name}: ${options.users.toLocaleString("en-US")} users, scenarios ${options.scenarios.join(", ")}, store ${options.store}, seed ${options.seed}`,
  );
  const rows: Row[] = [];
  const wanted = (Object.keys(SERVICE_SCENARIOS) as (keyof typeof SERVICE_SCENARIOS)[]).filter((s) => options.scenarios.includes(s));
  // The service, its baselines and the dataset are set up only when a scenario needs them.
  const ctx = wanted.length === 0 ? undefined : await setUp(options, log);
  try {
    for (const scenario of wanted) {
      log(`scenario ${scenario}`);
      rows.push(...(await SERVICE_SCENARIOS[scenario](ctx as BenchContext, log)));
    }
  } finally {
    await ctx?.close();
  }
  if (options.scenarios.includes("embedded-start")) {
    log("scenario embedded-start: first and later start on a fresh PGlite directory");
    rows.push(...(await embeddedStart(log, options.startRounds)));
  }
  if (options.scenarios.includes("directory")) {
    log(`scenario directory: ${options.directoryUsers.map((n) => n.toLocaleString("en-US")).join(", ")} users`);
    rows.push(...(await directoryScenario(options.directoryUsers, options.seed)));
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
      store: ctx?.store ?? "none",
      segments: ctx?.segments.map((s) => ({ key: s.spec.key, members: s.spec.size, description: s.spec.description })) ?? [],
    },
    skipped: ctx?.skipped ?? [],
    rows,
  };
  await mkdir(options.resultsDir, { recursive: true });
  const files = [join(options.resultsDir, `${options.name}.json`), ...(options.jsonFile === "" ? [] : [options.jsonFile])];
  await writeResult(result, files);
  process.stdout.write(`\n${markdownTable(rows)}\n\n`);
  for (const reason of result.skipped) process.stdout.write(`Skipped baseline: ${reason}\n`);
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
