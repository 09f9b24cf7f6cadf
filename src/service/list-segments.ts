/**
 * ListSegments paging over the in-memory definitions. Order is by id (UUIDv7, so creation
 * order) and the token is the last id returned, so pages stay stable while segments are created.
 */
import { InvalidArgumentError } from "../errors.js";
import type { Segment, SegmentStatus, SegmentType } from "../model.js";

export const PAGE_SIZE_DEFAULT = 50;
export const PAGE_SIZE_MAX = 1_000;

/** Filters and paging of a ListSegments call. */
export interface ListSegmentsQuery {
  pageSize: number;
  pageToken: string;
  showArchived: boolean;
  type: SegmentType | undefined;
  status: SegmentStatus | undefined;
  nameContains: string;
}

/** One page and the token of the next (empty on the last page). */
export interface ListSegmentsPage {
  segments: Segment[];
  nextPageToken: string;
}

/** Selects one page of `all` for `query`. */
export function listSegmentsPage(all: Iterable<Segment>, query: ListSegmentsQuery): ListSegmentsPage {
  if (query.pageSize < 0) throw new InvalidArgumentError("page_size", "must not be negative");
  const pageSize = query.pageSize === 0 ? PAGE_SIZE_DEFAULT : Math.min(query.pageSize, PAGE_SIZE_MAX);
  const filterKey = JSON.stringify([query.showArchived, query.type ?? null, query.status ?? null, query.nameContains]);
  const after = query.pageToken === "" ? "" : decodeToken(query.pageToken, filterKey);
  const needle = query.nameContains.toLowerCase();
  const matching = [...all]
    .filter(
      (s) =>
        s.id > after &&
        (query.showArchived || query.status === "ARCHIVED" || s.status !== "ARCHIVED") &&
        (query.type === undefined || s.type === query.type) &&
        (query.status === undefined || s.status === query.status) &&
        (needle === "" || s.name.toLowerCase().includes(needle)),
    )
    .sort((a, b) => (a.id < b.id ? -1 : 1));
  const segments = matching.slice(0, pageSize);
  const last = segments[segments.length - 1];
  const nextPageToken = matching.length > pageSize && last !== undefined ? encodeToken(last.id, filterKey) : "";
  return { segments, nextPageToken };
}

function encodeToken(afterId: string, filterKey: string): string {
  return Buffer.from(JSON.stringify({ a: afterId, f: filterKey })).toString("base64url");
}

function decodeToken(token: string, filterKey: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    parsed = undefined;
  }
  if (typeof parsed !== "object" || parsed === null || typeof (parsed as { a?: unknown }).a !== "string") {
    throw new InvalidArgumentError("page_token", "is not a token returned by ListSegments");
  }
  const { a, f } = parsed as { a: string; f: unknown };
  if (f !== filterKey)
    throw new InvalidArgumentError("page_token", "was issued for different filters; repeat the original filters or start without a token");
  return a;
}
