import { describe, expect, it } from "vitest";
import type { Segment } from "../../src/model.js";
import { type ListSegmentsQuery, listSegmentsPage } from "../../src/service/list-segments.js";

const at = new Date(0);
const segment = (id: string, name: string, status: Segment["status"] = "ACTIVE"): Segment => ({
  id,
  name,
  description: "",
  type: "STATIC",
  status,
  query: null,
  schedule: null,
  memberCount: 0,
  version: 0,
  versionAt: null,
  createdAt: at,
  updatedAt: at,
  archivedAt: null,
  lastEvaluation: null,
});
const all = [segment("c", "Gamma"), segment("a", "Alpha"), segment("b", "Beta", "ARCHIVED"), segment("d", "Delta", "DRAFT")];
const query = (over: Partial<ListSegmentsQuery> = {}): ListSegmentsQuery => ({
  pageSize: 0,
  pageToken: "",
  showArchived: false,
  type: undefined,
  status: undefined,
  nameContains: "",
  ...over,
});

describe("listSegmentsPage", () => {
  it("orders by id and hides archived segments unless asked", () => {
    expect(listSegmentsPage(all, query()).segments.map((s) => s.id)).toEqual(["a", "c", "d"]);
    expect(listSegmentsPage(all, query({ showArchived: true })).segments.map((s) => s.id)).toEqual(["a", "b", "c", "d"]);
    expect(listSegmentsPage(all, query({ status: "ARCHIVED" })).segments.map((s) => s.id)).toEqual(["b"]);
  });

  it("pages with a token and filters by name, ignoring case", () => {
    const first = listSegmentsPage(all, query({ pageSize: 2 }));
    expect(first.segments.map((s) => s.id)).toEqual(["a", "c"]);
    const second = listSegmentsPage(all, query({ pageSize: 2, pageToken: first.nextPageToken }));
    expect(second.segments.map((s) => s.id)).toEqual(["d"]);
    expect(second.nextPageToken).toBe("");
    expect(listSegmentsPage(all, query({ nameContains: "ALP" })).segments.map((s) => s.name)).toEqual(["Alpha"]);
  });

  it("refuses a token used with other filters, a forged token and a negative size", () => {
    const { nextPageToken } = listSegmentsPage(all, query({ pageSize: 1 }));
    expect(() => listSegmentsPage(all, query({ pageSize: 1, pageToken: nextPageToken, nameContains: "a" }))).toThrow(
      "page_token: was issued for different filters",
    );
    expect(() => listSegmentsPage(all, query({ pageToken: "garbage" }))).toThrow("page_token");
    expect(() => listSegmentsPage(all, query({ pageSize: -1 }))).toThrow("page_size");
  });
});
