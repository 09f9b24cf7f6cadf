/** A Database that reports how long each statement and transaction took (for /metrics). */
import type { Database, Queryable } from "./database.js";

/** `db`, timing every query and transaction through `observe` (seconds). */
export function timedDatabase(db: Database, observe: (kind: "query" | "transaction", seconds: number) => void): Database {
  const timed = async <T>(kind: "query" | "transaction", run: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    try {
      return await run();
    } finally {
      observe(kind, (performance.now() - started) / 1000);
    }
  };
  const timedQueryable = (q: Queryable): Queryable => ({
    query: (text, params) => timed("query", () => q.query(text, params)),
    exec: (script) => q.exec(script),
  });
  return {
    kind: db.kind,
    query: (text, params) => timed("query", () => db.query(text, params)),
    exec: (script) => db.exec(script),
    transaction: (fn, signal) => timed("transaction", () => db.transaction((tx) => fn(timedQueryable(tx)), signal)),
    ...(db.copyOut === undefined ? {} : { copyOut: db.copyOut.bind(db) }),
    close: () => db.close(),
  };
}
