/**
 * directory: the user directory (typed arrays) against a plain V8 `Map<string, number>` — bytes
 * per user and lookups per second, at sizes past the Map's 2^24-entry limit.
 *
 * Method: every measurement runs in a fresh child process (`node --expose-gc`), so heaps never
 * mix. It adds N ids made like the bench dataset (`userId(seed, n)`: `user_<n>` for even n, a
 * UUID for odd n) with uid n, reading memory after a full GC before and after; then it looks up
 * 1,000,000 existing ids drawn uniformly at random after 100,000 warm-up lookups of other random
 * ids. Every id, added or looked up, is a fresh flat string decoded from UTF-8, as one arrives
 * from the wire: `userId` builds its UUIDs from slices, which a Map would keep alive as keys.
 * Lookup ids are made before the clock starts. The Map is only run where it can hold N. Each add
 * is timed on its own: the longest one is how long a growing structure holds the event loop in one
 * step (a table doubling), which every membership answer waits behind.
 *
 *   npx tsx bench/directory.ts [--users 10000000,50000000] [--seed 873]
 */
import { spawn } from "node:child_process";
import os from "node:os";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { UserDirectory } from "../src/index/user-directory.js";
import { rng, userId } from "./lib/dataset.js";
import { markdownTable, type Row } from "./lib/report.js";

/** Sizes the Map baseline is run at; V8 refuses a Map's 16,777,217th entry. */
const MAP_LIMIT = 16_000_000;
const LOOKUPS = 1_000_000;
const WARM_UP = 100_000;
const BASELINE = "V8 Map<string, number>";
const encoder = new TextEncoder();
const decoder = new TextDecoder();

type Structure = "directory" | "map";

/** What one child process measured. */
interface Measurement {
  structure: Structure;
  users: number;
  /** Seconds to add every user, making the ids included. */
  buildS: number;
  /** UserDirectory.byteSize(); 0 for the Map. */
  byteSize: number;
  rss: number;
  arrayBuffers: number;
  heapUsed: number;
  lookupsPerS: number;
  /** The longest single add (ms). */
  longestAddMs: number;
}

/** Runs the directory (and, where it fits, the Map) at each size; one row per figure and size. */
export async function directoryScenario(sizes: number[], seed = 873): Promise<Row[]> {
  return rowsOf(await measureAll(sizes, seed));
}

async function measureAll(sizes: number[], seed: number): Promise<Measurement[]> {
  const measurements: Measurement[] = [];
  for (const users of sizes) {
    for (const structure of ["directory", "map"] as const) {
      if (structure === "map" && users > MAP_LIMIT) continue;
      process.stderr.write(`[directory] ${structure}, ${users.toLocaleString("en-US")} users…\n`);
      measurements.push(await inChild(structure, users, seed));
    }
  }
  return measurements;
}

function rowsOf(measurements: Measurement[]): Row[] {
  const rows: Row[] = [];
  for (const ours of measurements) {
    if (ours.structure !== "directory") continue;
    const map = measurements.find((m) => m.structure === "map" && m.users === ours.users);
    const at = `at ${sizeLabel(ours.users)}`;
    const perUser = (bytes: number | undefined) => (bytes === undefined ? undefined : bytes / ours.users);
    const row = (figure: string, unit: string, better: Row["better"], value: number, baseline: number | undefined): Row => ({
      scenario: "directory",
      figure,
      unit,
      better,
      ours: value,
      baseline: BASELINE,
      baselineValue: baseline,
    });
    rows.push(
      row(
        `bytes per user ${at}: held (ours byteSize(), Map heapUsed growth)`,
        "B",
        "lower",
        ours.byteSize / ours.users,
        perUser(map?.heapUsed),
      ),
      row(`bytes per user ${at}: process RSS growth`, "B", "lower", ours.rss / ours.users, perUser(map?.rss)),
      row(`lookups per second ${at}`, "lookups/s", "higher", ours.lookupsPerS, map?.lookupsPerS),
      row(`longest single add while growing to ${sizeLabel(ours.users)}`, "ms", "lower", ours.longestAddMs, map?.longestAddMs),
    );
  }
  return rows;
}

/** Runs this file as a child measuring one structure at one size. */
async function inChild(structure: Structure, users: number, seed: number): Promise<Measurement> {
  const args = ["--expose-gc", "--max-old-space-size=16384", "--import", "tsx", fileURLToPath(import.meta.url)];
  const child = spawn(process.execPath, [...args, "--child", structure, "--users", String(users), "--seed", String(seed)], {
    cwd: fileURLToPath(new URL("..", import.meta.url)),
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout.on("data", (chunk: Buffer) => {
    out += chunk.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  if (code !== 0) throw new Error(`directory bench child (${structure}, ${users}) exited with ${code}`);
  return JSON.parse(out) as Measurement;
}

/** The child's work: build, measure memory, time lookups. */
async function measure(structure: Structure, users: number, seed: number): Promise<Measurement> {
  await settle();
  const before = process.memoryUsage();
  const started = performance.now();
  const { lookup, byteSize, longestAddMs } = structure === "directory" ? buildDirectory(users, seed) : buildMap(users, seed);
  const buildS = (performance.now() - started) / 1000;
  await settle();
  const after = process.memoryUsage();
  return {
    structure,
    users,
    buildS,
    byteSize: byteSize(),
    rss: after.rss - before.rss,
    arrayBuffers: after.arrayBuffers - before.arrayBuffers,
    heapUsed: after.heapUsed - before.heapUsed,
    lookupsPerS: lookupsPerSecond(lookup, users, seed),
    longestAddMs,
  };
}

/** Full GCs with turns of the event loop between, so freed array buffers are released too. */
async function settle(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error("run the child with --expose-gc");
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise(setImmediate);
  }
}

/** User n's id as a request or the store would bring it: a flat string fresh from UTF-8. */
function wireId(seed: number, n: number): string {
  return decoder.decode(encoder.encode(userId(seed, n)));
}

interface Built {
  lookup: (id: string) => number | undefined;
  byteSize: () => number;
  longestAddMs: number;
}

/** Adds users 0 … users − 1 with `add`, timing each add alone; the longest (ms). */
function addAll(users: number, seed: number, add: (uid: number, id: string) => void): number {
  let longest = 0;
  for (let n = 0; n < users; n++) {
    const id = wireId(seed, n);
    const started = performance.now();
    add(n, id);
    longest = Math.max(longest, performance.now() - started);
  }
  return longest;
}

function buildDirectory(users: number, seed: number): Built {
  const directory = new UserDirectory();
  const longestAddMs = addAll(users, seed, (uid, id) => directory.add(uid, id));
  return { lookup: (id) => directory.lookup(id), byteSize: () => directory.byteSize(), longestAddMs };
}

function buildMap(users: number, seed: number): Built {
  const map = new Map<string, number>();
  const longestAddMs = addAll(users, seed, (uid, id) => map.set(id, uid));
  return { lookup: (id) => map.get(id), byteSize: () => 0, longestAddMs };
}

/** Lookups of random existing users per second; throws if any answer is wrong. */
function lookupsPerSecond(lookup: Built["lookup"], users: number, seed: number): number {
  const next = rng(seed + 2);
  const draw = (count: number) => Array.from({ length: count }, () => Math.floor(next() * users));
  const time = (numbers: number[]) => {
    // Fresh strings, as a request would bring: the Map cannot reuse a hash cached in the key.
    const ids = numbers.map((n) => wireId(seed, n));
    const started = performance.now();
    let wrong = 0;
    for (let i = 0; i < ids.length; i++) if (lookup(ids[i] ?? "") !== numbers[i]) wrong++;
    const seconds = (performance.now() - started) / 1000;
    if (wrong > 0) throw new Error(`${wrong} wrong lookups`);
    return ids.length / seconds;
  };
  time(draw(WARM_UP));
  return time(draw(LOOKUPS));
}

function sizeLabel(users: number): string {
  return users % 1_000_000 === 0 ? `${users / 1_000_000}M` : users.toLocaleString("en-US");
}

/** Every measurement, raw, per user. */
function detailTable(measurements: Measurement[]): string {
  const perUser = (bytes: number, users: number) => (bytes / users).toFixed(1);
  const lines = [
    "| users | structure | byteSize B/user | arrayBuffers Δ B/user | heapUsed Δ B/user | RSS Δ B/user | lookups/s | build s | longest add ms |",
    "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const m of measurements) {
    const name = m.structure === "map" ? BASELINE : "UserDirectory";
    const held = m.structure === "map" ? "—" : perUser(m.byteSize, m.users);
    lines.push(
      `| ${m.users.toLocaleString("en-US")} | ${name} | ${held} | ${perUser(m.arrayBuffers, m.users)} | ${perUser(m.heapUsed, m.users)} | ` +
        `${perUser(m.rss, m.users)} | ${Math.round(m.lookupsPerS).toLocaleString("en-US")} | ${m.buildS.toFixed(1)} | ${m.longestAddMs.toFixed(1)} |`,
    );
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      users: { type: "string", default: "10000000,50000000" },
      seed: { type: "string", default: "873" },
      child: { type: "string" },
    },
  });
  const seed = Number(values.seed);
  const sizes = values.users.split(",").map((s) => Number(s.replaceAll("_", "")));
  if (!Number.isInteger(seed) || sizes.some((n) => !Number.isInteger(n) || n < 1)) throw new Error("--users and --seed take integers");
  if (values.child === "directory" || values.child === "map") {
    process.stdout.write(`${JSON.stringify(await measure(values.child, sizes[0] ?? 0, seed))}\n`);
    return;
  }
  const measurements = await measureAll(sizes, seed);
  const cpu = os.cpus()[0]?.model ?? "unknown CPU";
  process.stdout.write(
    `\nUser directory vs ${BASELINE}, seed ${seed}, ${os.cpus().length} × ${cpu}, Node ${process.version}; ` +
      `each row a fresh process, memory after a full GC, ${LOOKUPS.toLocaleString("en-US")} random lookups.\n\n` +
      `${detailTable(measurements)}\n\n${markdownTable(rowsOf(measurements))}\n`,
  );
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`directory bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
}
