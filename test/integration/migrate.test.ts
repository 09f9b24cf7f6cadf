/**
 * Replicas starting together on an empty database all migrate it: each version is applied once,
 * and none fails (the migrations table used to be created outside the lock, and one start in
 * three crashed on the catalog race).
 */
import pino from "pino";
import { describe, expect, it } from "vitest";
import { migrate } from "../../src/store/migrate.js";
import { PostgresDatabase } from "../../src/store/postgres-database.js";
import { STORES } from "../support/stores.js";

const REPLICAS = 4;
const ROUNDS = 5;
const postgres = STORES.filter((kind) => kind.name === "postgres");

describe("migrate on Postgres", () => {
  it.each(Array.from({ length: ROUNDS }, (_, i) => i + 1))(
    "four replicas migrating one empty database all succeed, each version applied once (round %i)",
    async () => {
      const [kind] = postgres;
      if (kind === undefined) throw new Error("no postgres store kind in test/support/stores.ts");
      const store = await kind.create();
      // One pool each, as separate processes would have: the race is between connections.
      const replicas = Array.from(
        { length: REPLICAS },
        () => new PostgresDatabase(store.env.DATABASE_URL ?? "", pino({ level: "silent" }), { statementMs: 10_000, lockMs: 10_000 }, 1),
      );
      try {
        const outcomes = await Promise.allSettled(replicas.map((db) => migrate(db)));
        expect(outcomes.map((outcome) => outcome.status)).toEqual(Array(REPLICAS).fill("fulfilled"));
        const applied = outcomes.flatMap((outcome) => (outcome.status === "fulfilled" ? outcome.value : []));
        const [first] = replicas;
        const rows = await (first as PostgresDatabase).query<{ version: number }>("SELECT version FROM schema_migrations ORDER BY version");
        const versions = rows.map((row) => row.version);
        expect(versions.length).toBeGreaterThan(0);
        expect([...applied].sort((a, b) => a - b)).toEqual(versions);
      } finally {
        await Promise.all(replicas.map((db) => db.close()));
        await store.drop();
      }
    },
    60_000,
  );
});
