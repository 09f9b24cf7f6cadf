/**
 * `npx tsx bench/crash.ts --kills 50 --store postgres|pglite`: the kill -9 durability scenario of
 * test/integration/crash.test.ts at a larger scale. The service (src/main.ts as a child process)
 * is SIGKILLed at random moments while one client per segment changes membership; after every
 * restart each segment is compared exactly with its client's model. Prints a summary; exits 1 if
 * any acknowledged change was lost or any half-applied change showed.
 */
import { parseArgs } from "node:util";
import { OP_KINDS, parseOps, runCrashScenario } from "../test/support/crash-driver.js";
import { STORES } from "../test/support/stores.js";

const HELP = `npx tsx bench/crash.ts [options]
  --kills N       SIGKILLs (and restarts) of the service (default 50)
  --store S       pglite | postgres (default pglite); Postgres is TEST_DATABASE_URL's server
  --seed N        RNG seed of the calls and kill delays (default: random, printed)
  --segments N    segments, each driven by one client (default 4)
  --universe N    distinct user ids the clients draw from (default 3000)
  --ops a,b       subset of ${OP_KINDS.join(", ")} (default: CRASH_OPS, else all)
  --keep          keep the store afterwards (it is always kept when a check fails)`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      kills: { type: "string", default: "50" },
      store: { type: "string", default: "pglite" },
      seed: { type: "string" },
      segments: { type: "string", default: "4" },
      universe: { type: "string", default: "3000" },
      ops: { type: "string" },
      keep: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) return void process.stdout.write(`${HELP}\n`);
  const kind = STORES.find((s) => s.name === values.store) ?? fail("--store must be pglite or postgres");
  const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : whole(values.seed, "--seed");
  const kills = whole(values.kills, "--kills");
  const ops = parseOps(values.ops ?? process.env.CRASH_OPS);
  const started = performance.now();
  const elapsed = () => `${((performance.now() - started) / 1000).toFixed(1)}s`;
  process.stdout.write(`kill -9 on ${kind.name}: ${kills} kills, seed ${seed}, ops ${ops.join(", ")}\n`);
  const store = await kind.create();
  let failed = true;
  try {
    const report = await runCrashScenario({
      env: store.env,
      seed,
      kills,
      ops,
      segments: whole(values.segments, "--segments"),
      universe: whole(values.universe, "--universe"),
      progress: (line) => process.stderr.write(`[crash ${elapsed()}] ${line}\n`),
    });
    failed = report.violations.length > 0 || report.wrongAnswers.length > 0;
    const starts = [...report.startMs].sort((a, b) => a - b);
    const median = starts[Math.floor(starts.length / 2)] ?? 0;
    const acked = Object.entries(report.acknowledged).map(([op, n]) => `${op} ${n}`);
    const cut = Object.entries(report.cutCodes).map(([code, n]) => `${code} ${n}`);
    const lines = [
      `kills            ${report.kills} in ${elapsed()}`,
      `acknowledged     ${acked.join(", ")} (${report.noops} changed nothing)`,
      `cut by a kill    ${report.inDoubt.applied} applied, ${report.inDoubt.notApplied} not applied (codes: ${cut.join(", ") || "none"})`,
      `final versions   ${report.versions.join(", ")}`,
      `start to serving median ${Math.round(median)} ms, max ${Math.round(starts.at(-1) ?? 0)} ms`,
      report.violations.length > 0 ? `FAILED (seed ${seed}):\n  ${report.violations.join("\n  ")}` : "durability: every check passed",
      report.wrongAnswers.length > 0
        ? `WRONG COUNTERS (seed ${seed}):\n  ${report.wrongAnswers.join("\n  ")}`
        : "answers: every counter right",
    ];
    process.stdout.write(`${lines.join("\n")}\n`);
  } finally {
    if (failed || values.keep) process.stdout.write(`store kept: ${JSON.stringify(store.env)}\n`);
    else await store.drop();
  }
  process.exitCode = failed ? 1 : 0;
}

function whole(raw: string, flag: string): number {
  const value = Number(raw.replaceAll("_", ""));
  if (!Number.isInteger(value) || value < 0) fail(`${flag} must be a whole number`);
  return value;
}

function fail(message: string): never {
  process.stderr.write(`${message}\n\n${HELP}\n`);
  process.exit(2);
}

await main();
