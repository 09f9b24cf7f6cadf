/**
 * Realistic sample events for the built-in analytics source, as NDJSON on stdout (seeded, so a
 * run is reproducible). Users arrive over the last 90 days, browse in sessions, some look at
 * pricing, some sign up, some of those buy; so "viewed pricing in the last 30 days and has not
 * purchased" has a sensible answer.
 *
 *   npm run -s sample-events -- --users 10000 [--seed 1] [--now 2026-03-01T00:00:00Z] [--days 90] > events.ndjson
 */
import { once } from "node:events";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { rng } from "../bench/lib/dataset.js";

/** What to generate. */
export interface SampleOptions {
  users: number;
  seed: number;
  now: Date;
  days: number;
}

const COUNTRIES: [string, number][] = [
  ["US", 35],
  ["GB", 10],
  ["DE", 10],
  ["FR", 8],
  ["IN", 12],
  ["BR", 8],
  ["JP", 7],
  ["CA", 5],
  ["AU", 5],
];
const DEVICES: [string, number][] = [
  ["desktop", 55],
  ["mobile", 40],
  ["tablet", 5],
];
const PLANS: [string, number][] = [
  ["starter", 50],
  ["pro", 35],
  ["team", 15],
];
const PRICE: Record<string, number> = { starter: 9, pro: 29, team: 99 };
const PAGES = ["/", "/features", "/blog", "/docs", "/about", "/integrations", "/changelog"];
const FEATURES = ["export", "dashboard", "alerts", "api", "sharing"];
const DAY_MS = 86_400_000;

function pick<T>(rand: () => number, weighted: [T, number][]): T {
  const total = weighted.reduce((sum, [, w]) => sum + w, 0);
  let r = rand() * total;
  for (const [value, w] of weighted) {
    r -= w;
    if (r < 0) return value;
  }
  return (weighted[weighted.length - 1] as [T, number])[0];
}

/** The NDJSON lines of one user's history, oldest first. */
function userEvents(i: number, rand: () => number, options: SampleOptions): string[] {
  const now = options.now.getTime();
  const userId = `user-${String(i).padStart(6, "0")}`;
  const country = pick(rand, COUNTRIES);
  const device = pick(rand, DEVICES);
  const firstSeen = now - rand() * options.days * DAY_MS;
  const events: { name: string; ts: number; properties: Record<string, unknown> }[] = [];
  const sessions = 1 + Math.floor(-Math.log(1 - rand()) * 4);
  let signedUp = false;
  let plan: string | undefined;
  for (let s = 0; s < sessions; s++) {
    let ts = s === 0 ? firstSeen : firstSeen + rand() * (now - firstSeen);
    const step = () => {
      ts = Math.min(now - 1, ts + 5_000 + rand() * 120_000);
      return ts;
    };
    const views = 1 + Math.floor(rand() * 5);
    for (let v = 0; v < views; v++) {
      events.push({ name: "page_view", ts: step(), properties: { path: PAGES[Math.floor(rand() * PAGES.length)], country, device } });
    }
    if (rand() < 0.3) {
      const viewed = pick(rand, PLANS);
      events.push({ name: "pricing_view", ts: step(), properties: { plan: viewed, country, device } });
      if (!signedUp && rand() < 0.5) {
        signedUp = true;
        events.push({ name: "signup", ts: step(), properties: { plan: "free", country, source: rand() < 0.5 ? "organic" : "ads" } });
      }
      if (signedUp && plan === undefined && rand() < 0.3) {
        plan = viewed;
        events.push({ name: "purchase", ts: step(), properties: { plan, amount: PRICE[plan], currency: "USD", country } });
      }
    }
    if (signedUp && rand() < 0.6) {
      events.push({ name: "login", ts: step(), properties: { device } });
      events.push({
        name: "feature_used",
        ts: step(),
        properties: { feature: FEATURES[Math.floor(rand() * FEATURES.length)], plan: plan ?? "free" },
      });
    }
  }
  events.sort((a, b) => a.ts - b.ts);
  return events.map((e) =>
    JSON.stringify({ user_id: userId, name: e.name, ts: new Date(Math.floor(e.ts)).toISOString(), properties: e.properties }),
  );
}

/** Sample events, one NDJSON line at a time (about 15 per user on average). */
export function* sampleEventLines(options: SampleOptions): Generator<string> {
  const rand = rng(options.seed);
  for (let i = 1; i <= options.users; i++) yield* userEvents(i, rand, options);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      users: { type: "string", default: "10000" },
      seed: { type: "string", default: "1" },
      now: { type: "string" },
      days: { type: "string", default: "90" },
    },
  });
  const users = Number(values.users);
  const seed = Number(values.seed);
  const days = Number(values.days);
  const now = values.now === undefined ? new Date() : new Date(values.now);
  if (!Number.isInteger(users) || users < 1) throw new Error("--users must be a positive integer");
  if (!Number.isInteger(seed)) throw new Error("--seed must be an integer");
  if (!Number.isFinite(days) || days <= 0) throw new Error("--days must be a positive number");
  if (Number.isNaN(now.getTime())) throw new Error("--now must be an ISO-8601 time");
  let buffer = "";
  for (const line of sampleEventLines({ users, seed, now, days })) {
    buffer += `${line}\n`;
    if (buffer.length >= 1 << 16) {
      if (!process.stdout.write(buffer)) await once(process.stdout, "drain");
      buffer = "";
    }
  }
  process.stdout.write(buffer);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
