/**
 * ListSegments paging over the in-memory definitions. Order is by id (UUIDv7, so creation
 * order) and the token is the last id returned, so pages stay stable while segments are created.
 * A page stops at page_size segments or once its estimated size passes PAGE_BYTES_MAX, so a few
 * segments with large queries cannot push every default listing over the message size limit.
 */
import { InvalidArgumentError } from "../errors.js";
import type { Segment, SegmentStatus, SegmentType } from "../model.js";
import { isSegmentId } from "./ids.js";
import { signPageToken, verifyPageToken } from "./page-token.js";
import { checkText, NAME_MAX_CHARS } from "./validation.js";

export const PAGE_SIZE_DEFAULT = 50;
export const PAGE_SIZE_MAX = 1_000;
/** A page holds at least one segment, and no more once this many bytes are estimated. */
export const PAGE_BYTES_MAX = 4 * 1024 * 1024;
/** What a segment's fixed fields (id, enums, counters, timestamps) and framing cost at most. */
const SEGMENT_FIXED_BYTES = 256;
const METHOD = "ListSegments";

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

/** Selects one page of `all` for `query`; tokens are signed with `secret`. */
export function listSegmentsPage(all: Iterable<Segment>, query: ListSegmentsQuery, secret: Uint8Array): ListSegmentsPage {
  if (query.pageSize < 0) throw new InvalidArgumentError("page_size", "must not be negative");
  checkText(query.nameContains, "name_contains", NAME_MAX_CHARS);
  const pageSize = query.pageSize === 0 ? PAGE_SIZE_DEFAULT : Math.min(query.pageSize, PAGE_SIZE_MAX);
  const filterKey = JSON.stringify([query.showArchived, query.type ?? null, query.status ?? null, query.nameContains]);
  const after = query.pageToken === "" ? "" : decodeToken(query.pageToken, filterKey, secret);
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
  const segments: Segment[] = [];
  let bytes = 0;
  for (const segment of matching) {
    if (segments.length === pageSize) break;
    const size = estimatedBytes(segment);
    if (segments.length > 0 && bytes + size > PAGE_BYTES_MAX) break;
    segments.push(segment);
    bytes += size;
  }
  const last = segments[segments.length - 1];
  const more = matching.length > segments.length && last !== undefined;
  return { segments, nextPageToken: more ? signPageToken(METHOD, { a: last.id, f: filterKey }, secret) : "" };
}

/**
 * An upper estimate of a segment's encoded size. The query is measured in its JSON form, which
 * is larger than its binary form: field names and quotes outweigh tags and lengths.
 */
export function estimatedBytes(segment: Segment): number {
  const text = segment.name + segment.description + (segment.schedule === null ? "" : segment.schedule.cron + segment.schedule.timeZone);
  const query = segment.query === null ? "" : JSON.stringify(segment.query);
  return SEGMENT_FIXED_BYTES + Buffer.byteLength(text, "utf8") + Buffer.byteLength(query, "utf8");
}

function decodeToken(token: string, filterKey: string, secret: Uint8Array): string {
  const { a, f } = verifyPageToken(token, METHOD, secret);
  if (typeof a !== "string" || !isSegmentId(a)) throw new InvalidArgumentError("page_token", `is not a token ${METHOD} returned`);
  if (f !== filterKey)
    throw new InvalidArgumentError("page_token", "was issued for different filters; repeat the original filters or start without a token");
  return a;
}
