/** Command-line options of `npm run bench`. */
import { parseArgs } from "node:util";

export const SCENARIOS = [
  "check",
  "bulk",
  "memory",
  "import",
  "subtract",
  "restart",
  "batch-check",
  "audience",
  "replica",
  "import-check",
  "new-users",
  "events",
  "evaluate",
  "list-user-segments",
  "auth",
  "metrics-cost",
  "directory",
  "embedded-start",
] as const;
/** A scenario name. */
export type Scenario = (typeof SCENARIOS)[number];

/** Everything a run is told. */
export interface BenchOptions {
  name: string;
  scenarios: Scenario[];
  users: number;
  durationMs: number;
  concurrency: number;
  workers: number;
  store: "pglite" | "postgres";
  seed: number;
  jsonFile: string;
  resultsDir: string;
  redisUrl: string;
  databaseUrl: string;
  updateReadme: boolean;
  /** Extra segments seeded into the store before the restart, and their members in all. */
  restartSegments: number;
  restartMembers: number;
  /** Users per BatchCheckMembership call in `batch-check`. */
  batchSizes: number[];
  /** Extra ACTIVE segments `list-user-segments` creates. */
  listSegments: number;
  /** Rounds of first and later start the embedded-start scenario makes. */
  startRounds: number;
  /** Rounds of auth and metrics-cost: both arms' processes started afresh each round. */
  armRounds: number;
  /** Alternating pairs of load windows per round in auth and metrics-cost. */
  armPairs: number;
  /** Directory sizes the `directory` scenario builds. */
  directoryUsers: number[];
}

const HELP = `npm run bench -- [options]
  --quick              every scenario at small size (100k users, 2 s per load figure)
  --scenario a,b       subset of: ${SCENARIOS.join(", ")} (default: all but directory)
  --users N            users in the directory; the dense segment holds all of them (default 10,000,000)
  --duration S         seconds per load measurement (default 10)
  --concurrency N      calls in flight per load worker for the throughput figures (default 16)
  --workers N          load-generating processes for the throughput figures (default 2)
  --store S            pglite | postgres: the service's own store (default postgres)
  --restart-segments N   segments added to the store before the restart (default 1,000; quick 100)
  --restart-members N    their members in all (default 50,000,000; quick 500,000)
  --batch-sizes N,M     users per call in batch-check (default 1,000,10,000)
  --list-segments N     extra segments list-user-segments creates (default 10,000; quick 1,000)
  --start-rounds N      first-and-later starts embedded-start makes (default 3; quick 1)
  --arm-rounds N        auth and metrics-cost: rounds, each with both arms started afresh (default 3; quick 1)
  --arm-pairs N         auth and metrics-cost: alternating pairs of windows per round (default 4; quick 2)
  --directory-users N,M  directory sizes for the directory scenario (default 10,000,000,50,000,000; quick: --users)
  --seed N             RNG seed for ids, memberships and lookups (default 873)
  --name NAME          results go to bench/results/NAME.json (default: full, or quick)
  --json FILE          also write the results to FILE
  --results-dir DIR    where NAME.json goes (default bench/results)
  --update-readme      rewrite the table in bench/README.md from this run
Environment: REDIS_URL (default redis://127.0.0.1:6379), BENCH_DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/test): the baselines; each is skipped, with the reason
printed, when it cannot be reached.`;

/** Parses argv; prints help and exits on --help. */
export function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: "boolean", default: false },
      scenario: { type: "string" },
      users: { type: "string" },
      duration: { type: "string" },
      concurrency: { type: "string" },
      workers: { type: "string" },
      store: { type: "string", default: "postgres" },
      seed: { type: "string", default: "873" },
      name: { type: "string" },
      json: { type: "string", default: "" },
      "results-dir": { type: "string", default: new URL("../results/", import.meta.url).pathname },
      "update-readme": { type: "boolean", default: false },
      "restart-segments": { type: "string" },
      "restart-members": { type: "string" },
      "directory-users": { type: "string" },
      "list-segments": { type: "string" },
      "start-rounds": { type: "string" },
      "arm-rounds": { type: "string" },
      "arm-pairs": { type: "string" },
      "batch-sizes": { type: "string", default: "1000,10000" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    process.exit(0);
  }
  // The directory scenario measures a data structure, not the service: run it on its own.
  const scenarios = (values.scenario?.split(",") ?? SCENARIOS.filter((s) => s !== "directory")).map((s) => s.trim());
  for (const s of scenarios)
    if (!(SCENARIOS as readonly string[]).includes(s)) fail(`unknown scenario ${s}; choose from ${SCENARIOS.join(", ")}`);
  if (values.store !== "pglite" && values.store !== "postgres") fail("--store must be pglite or postgres");
  const users = count(values.users, values.quick ? 100_000 : 10_000_000, "--users");
  return {
    name: values.name ?? (values.quick ? "quick" : "full"),
    scenarios: scenarios as Scenario[],
    users,
    durationMs: Math.round(1000 * positive(values.duration, values.quick ? 2 : 10, "--duration")),
    concurrency: count(values.concurrency, 16, "--concurrency"),
    workers: count(values.workers, 2, "--workers"),
    store: values.store,
    seed: count(values.seed, 873, "--seed"),
    jsonFile: values.json,
    resultsDir: values["results-dir"],
    redisUrl: process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
    databaseUrl: process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test",
    updateReadme: values["update-readme"],
    restartSegments: whole(values["restart-segments"], values.quick ? 100 : 1_000, "--restart-segments"),
    directoryUsers: (values["directory-users"]?.split(",") ?? (values.quick ? [String(users)] : ["10000000", "50000000"])).map((n) =>
      count(n, 0, "--directory-users"),
    ),
    batchSizes: values["batch-sizes"].split(",").map((n) => count(n, 0, "--batch-sizes")),
    listSegments: count(values["list-segments"], values.quick ? 1_000 : 10_000, "--list-segments"),
    startRounds: count(values["start-rounds"], values.quick ? 1 : 3, "--start-rounds"),
    armRounds: count(values["arm-rounds"], values.quick ? 1 : 3, "--arm-rounds"),
    armPairs: count(values["arm-pairs"], values.quick ? 2 : 4, "--arm-pairs"),
    restartMembers: whole(values["restart-members"], values.quick ? 500_000 : 50_000_000, "--restart-members"),
  };
}

function positive(raw: string | undefined, fallback: number, flag: string): number {
  if (raw === undefined) return fallback;
  const value = Number(raw.replaceAll("_", ""));
  if (!(value > 0)) fail(`${flag} must be a positive number`);
  return value;
}

function count(raw: string | undefined, fallback: number, flag: string): number {
  const value = positive(raw, fallback, flag);
  if (!Number.isInteger(value)) fail(`${flag} must be a whole number`);
  return value;
}

/** Like count, but 0 is allowed. */
function whole(raw: string | undefined, fallback: number, flag: string): number {
  if (raw === "0") return 0;
  return count(raw, fallback, flag);
}

function fail(message: string): never {
  process.stderr.write(`${message}\n\n${HELP}\n`);
  process.exit(2);
}
