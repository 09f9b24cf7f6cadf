import { describe, expect, it } from "vitest";
import { EventParser } from "../../src/service/event-parser.js";

/** The normalized ts of one NDJSON event with `ts`, or the reason it was rejected. */
function tsOf(ts: string): string {
  const parser = new EventParser("ndjson");
  const rows = parser.push(new TextEncoder().encode(`${JSON.stringify({ user_id: "u", name: "e", ts })}\n`));
  return rows[0]?.ts ?? `rejected: ${parser.rejectedLines[0]?.reason}`;
}

describe("EventParser timestamps", () => {
  it("keeps a canonical UTC time as it is and adds milliseconds where missing", () => {
    expect(tsOf("2026-01-31T12:34:56.789Z")).toBe("2026-01-31T12:34:56.789Z");
    expect(tsOf("2026-01-31T12:34:56Z")).toBe("2026-01-31T12:34:56.000Z");
    expect(tsOf("2026-12-31T23:59:59.999Z")).toBe("2026-12-31T23:59:59.999Z");
    expect(tsOf("0050-06-01T00:00:00.000Z")).toBe("0050-06-01T00:00:00.000Z");
  });

  it("knows leap days", () => {
    expect(tsOf("2024-02-29T00:00:00.000Z")).toBe("2024-02-29T00:00:00.000Z");
    expect(tsOf("2000-02-29T00:00:00Z")).toBe("2000-02-29T00:00:00.000Z");
    for (const ts of ["2023-02-29T00:00:00.000Z", "1900-02-29T00:00:00.000Z", "2024-02-30T00:00:00Z"])
      expect(tsOf(ts)).toMatch(/^rejected/);
  });

  it("rejects fields out of range", () => {
    for (const ts of [
      "2026-04-31T00:00:00.000Z",
      "2026-13-01T00:00:00.000Z",
      "2026-00-01T00:00:00.000Z",
      "2026-01-00T00:00:00.000Z",
      "2026-01-01T24:00:00.000Z",
      "2026-01-01T23:60:00.000Z",
      "2026-01-01T23:59:60.000Z",
      "2026-01-01T23:59:5x.000Z",
      "2026-01-01T23:59:59.00xZ",
      "2026-01-01T23:59:59",
    ])
      expect(tsOf(ts), ts).toMatch(/^rejected/);
  });

  it("normalizes the other ISO-8601 forms to UTC milliseconds", () => {
    expect(tsOf("2026-01-31t12:34:56.789z")).toBe("2026-01-31T12:34:56.789Z");
    expect(tsOf("2026-01-31 12:34:56Z")).toBe("2026-01-31T12:34:56.000Z");
    expect(tsOf("2026-01-31T12:34:56.789+02:00")).toBe("2026-01-31T10:34:56.789Z");
    expect(tsOf("2026-01-31T12:34:56.789123Z")).toBe("2026-01-31T12:34:56.789Z");
    expect(tsOf("2026-01-31T12:34Z")).toBe("2026-01-31T12:34:00.000Z");
  });
});
