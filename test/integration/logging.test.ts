/**
 * Error logs carry no data: a driver error's SQL parameters, query text and row detail stay out of
 * the line, whatever their size, while the message, SQLSTATE and cause chain stay in.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger, describeError } from "../../src/logging.js";
import { PgliteDatabase } from "../../src/store/pglite-database.js";

/** A logger writing into an array, through the same serializers main.ts uses. */
function capture(): { lines: string[]; log: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  return { lines, log: createLogger({ level: "info" }, { write: (line: string) => void lines.push(line) }) };
}

describe("the err serializer", () => {
  let dir: string;
  let db: PgliteDatabase;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "segments-logging-"));
    db = await PgliteDatabase.open(dir, 10_000);
  });
  afterAll(async () => {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("logs a failing PGlite query with 100,000 parameters in a short line without any of them", async () => {
    const ids = Array.from({ length: 100_000 }, (_, i) => `member-${i}-secret`);
    const failure = await db.query("SELECT * FROM no_such_table WHERE id = ANY($1::text[])", [ids]).then(
      () => undefined,
      (error: unknown) => error,
    );
    // The store hands back only message and SQLSTATE (PGlite's worker strips the rest)…
    expect(failure).toMatchObject({ code: "42P01" });
    expect(failure).not.toHaveProperty("params");
    // …and PGlite's own error carries the SQL and the parameters: the serializer must drop them.
    Object.assign(failure as object, { query: "SELECT * FROM no_such_table WHERE id = ANY($1::text[])", params: [ids] });
    const { lines, log } = capture();
    log.error({ err: new Error("listing failed", { cause: failure }) }, "call failed unexpectedly");
    expect(lines).toHaveLength(1);
    const line = lines[0] ?? "";
    expect(line.length).toBeLessThan(4_000);
    expect(line).not.toContain("member-");
    expect(line).not.toContain("no_such_table WHERE");
    const logged = JSON.parse(line) as { err: { message: string; cause: { code: string; message: string; params?: unknown } } };
    expect(logged.err.message).toBe("listing failed");
    expect(logged.err.cause).toMatchObject({ code: "42P01", message: 'relation "no_such_table" does not exist' });
    expect(Object.keys(logged.err.cause).sort()).toEqual(["code", "message", "stack", "type"]);
  });

  it("drops pg-style detail, where and parameters but keeps the cause chain", () => {
    const driver = Object.assign(new Error("duplicate key value violates unique constraint"), {
      code: "23505",
      detail: "Key (external_id)=(member-42-secret) already exists.",
      where: "SQL statement with member-42-secret",
      parameters: ["member-42-secret"],
    });
    const { lines, log } = capture();
    log.error({ err: new Error("add failed", { cause: new Error("transaction failed", { cause: driver }) }) }, "failed");
    const line = lines[0] ?? "";
    expect(line).not.toContain("member-42");
    expect((JSON.parse(line) as { err: { cause: { cause: { code: string } } } }).err.cause.cause.code).toBe("23505");
  });

  it("describes thrown non-Error values without printing [object Object]", () => {
    const text = describeError(new Error("opening the store failed", { cause: { some: "shape", params: ["member-1"] } }));
    expect(text).toContain("opening the store failed");
    expect(text).toContain("caused by: non-Error Object thrown");
    expect(text).not.toContain("[object Object]");
    expect(text).not.toContain("member-1");
  });
});
