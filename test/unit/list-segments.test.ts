import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { Segment } from "../../src/model.js";
import { estimatedBytes, type ListSegmentsQuery, listSegmentsPage, PAGE_BYTES_MAX } from "../../src/service/list-segments.js";
import { signPageToken } from "../../src/service/page-token.js";

const at = new Date(0);
const secret = randomBytes(32);
/** A segment id whose order follows `n`. */
const idOf = (n: number) => `0190b6a0-0000-7000-8000-${n.toString(16).padStart(12, "0")}`;
const segment = (n: number, name: string, status: Segment["status"] = "ACTIVE", query: Segment["query"] = null): Segment => ({
  id: idOf(n),
  name,
  description: "",
  type: query === null ? "STATIC" : "DYNAMIC",
  status,
  query,
  schedule: null,
  memberCount: 0,
  version: 0,
  versionAt: null,
  createdAt: at,
  updatedAt: at,
  archivedAt: null,
  lastEvaluation: null,
  lastSuccessAt: null,
});
const all = [segment(3, "Gamma"), segment(1, "Alpha"), segment(2, "Beta", "ARCHIVED"), segment(4, "Delta", "DRAFT")];
const query = (over: Partial<ListSegmentsQuery> = {}): ListSegmentsQuery => ({
  pageSize: 0,
  pageToken: "",
  showArchived: false,
  type: undefined,
  status: undefined,
  nameContains: "",
  ...over,
});
const ids = (segments: Segment[]) => segments.map((s) => s.id);

describe("listSegmentsPage", () => {
  it("orders by id and hides archived segments unless asked", () => {
    expect(ids(listSegmentsPage(all, query(), secret).segments)).toEqual([idOf(1), idOf(3), idOf(4)]);
    expect(ids(listSegmentsPage(all, query({ showArchived: true }), secret).segments)).toEqual([idOf(1), idOf(2), idOf(3), idOf(4)]);
    expect(ids(listSegmentsPage(all, query({ status: "ARCHIVED" }), secret).segments)).toEqual([idOf(2)]);
  });

  it("pages with a token and filters by name, ignoring case", () => {
    const first = listSegmentsPage(all, query({ pageSize: 2 }), secret);
    expect(ids(first.segments)).toEqual([idOf(1), idOf(3)]);
    const second = listSegmentsPage(all, query({ pageSize: 2, pageToken: first.nextPageToken }), secret);
    expect(ids(second.segments)).toEqual([idOf(4)]);
    expect(second.nextPageToken).toBe("");
    expect(listSegmentsPage(all, query({ nameContains: "ALP" }), secret).segments.map((s) => s.name)).toEqual(["Alpha"]);
  });

  it("refuses a token used with other filters, a forged token and a negative size", () => {
    const { nextPageToken } = listSegmentsPage(all, query({ pageSize: 1 }), secret);
    expect(() => listSegmentsPage(all, query({ pageSize: 1, pageToken: nextPageToken, nameContains: "a" }), secret)).toThrow(
      "page_token: was issued for different filters",
    );
    expect(() => listSegmentsPage(all, query({ pageToken: "garbage" }), secret)).toThrow("page_token");
    expect(() => listSegmentsPage(all, query({ pageSize: -1 }), secret)).toThrow("page_size");
  });

  it("refuses the old readable token and a validly signed one that holds no segment id", () => {
    const filterKey = JSON.stringify([false, null, null, ""]);
    const readable = Buffer.from(JSON.stringify({ a: idOf(1), f: filterKey })).toString("base64url");
    expect(() => listSegmentsPage(all, query({ pageToken: readable }), secret)).toThrow("page_token: is not a token ListSegments returned");
    const signed = signPageToken("ListSegments", { a: "zzzz", f: filterKey }, secret);
    expect(() => listSegmentsPage(all, query({ pageToken: signed }), secret)).toThrow("page_token: is not a token ListSegments returned");
    const otherKey = listSegmentsPage(all, query({ pageSize: 1 }), randomBytes(32)).nextPageToken;
    expect(() => listSegmentsPage(all, query({ pageToken: otherKey }), secret)).toThrow("page_token");
  });

  it("refuses name_contains over 200 characters or holding U+0000", () => {
    expect(() => listSegmentsPage(all, query({ nameContains: "a".repeat(201) }), secret)).toThrow(
      "name_contains: must be at most 200 characters",
    );
    expect(() => listSegmentsPage(all, query({ nameContains: "a\u0000" }), secret)).toThrow("name_contains: must not contain U+0000");
    expect(listSegmentsPage(all, query({ nameContains: "a".repeat(200) }), secret).segments).toEqual([]);
  });

  it("stops a page once its estimated size passes the byte bound, and the token reaches every segment", () => {
    // Each query is about 900 KB: four fit in a page's 4 MiB, the fifth does not.
    const big = (n: number) => segment(n, `Big ${n}`, "DRAFT", { filter: { event: { name: "x".repeat(900_000) } } });
    const many = Array.from({ length: 12 }, (_, n) => big(n + 1));
    const seen: string[] = [];
    let token = "";
    for (let pages = 1; ; pages++) {
      const page = listSegmentsPage(many, query({ pageToken: token }), secret);
      expect(page.segments.length).toBeGreaterThan(0);
      expect(page.segments.reduce((sum, s) => sum + estimatedBytes(s), 0)).toBeLessThanOrEqual(PAGE_BYTES_MAX);
      seen.push(...ids(page.segments));
      token = page.nextPageToken;
      if (token === "") {
        expect(pages).toBe(3);
        break;
      }
    }
    expect(seen).toEqual(ids(many));
  });

  it("still returns one segment larger than the byte bound on its own", () => {
    const huge = segment(1, "Huge", "DRAFT", { sql: "x".repeat(PAGE_BYTES_MAX) });
    const page = listSegmentsPage([huge, segment(2, "Small")], query(), secret);
    expect(ids(page.segments)).toEqual([idOf(1)]);
    expect(ids(listSegmentsPage([huge, segment(2, "Small")], query({ pageToken: page.nextPageToken }), secret).segments)).toEqual([
      idOf(2),
    ]);
  });
});
