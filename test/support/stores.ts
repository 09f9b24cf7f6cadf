/**
 * The two durable stores every integration test runs against: embedded PGlite in a fresh
 * directory, and a real Postgres in a fresh database (TEST_DATABASE_URL names the server).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";

export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** Where one test file keeps its data; `drop` removes it. */
export interface TestStore {
  /** Environment-style settings for loadConfig. */
  env: { DATABASE_URL?: string; DATA_DIR?: string };
  drop(): Promise<void>;
}

/** A store kind and how to make a fresh one. */
export interface StoreKind {
  name: "pglite" | "postgres";
  create(): Promise<TestStore>;
}

/** A fresh PGlite data directory. */
async function pgliteStore(): Promise<TestStore> {
  const dir = await mkdtemp(join(tmpdir(), "segments-test-"));
  return { env: { DATA_DIR: dir }, drop: () => rm(dir, { recursive: true, force: true }) };
}

/** A fresh database on the test Postgres server. */
async function postgresStore(): Promise<TestStore> {
  const name = `segments_test_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  await admin((client) => client.query(`CREATE DATABASE ${name}`));
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  return {
    env: { DATABASE_URL: url.toString() },
    drop: () => admin((client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined),
  };
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  try {
    await client.connect();
  } catch (error: unknown) {
    throw new Error(`cannot reach the test Postgres at ${TEST_DATABASE_URL} (set TEST_DATABASE_URL): ${String(error)}`);
  }
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export const STORES: StoreKind[] = [
  { name: "pglite", create: pgliteStore },
  { name: "postgres", create: postgresStore },
];

/** The store kind named `name`. */
export function storeKind(name: StoreKind["name"]): StoreKind {
  const kind = STORES.find((s) => s.name === name);
  if (kind === undefined) throw new Error(`no store kind ${name}`);
  return kind;
}
