/** Paging of ListSegmentHistory: newest first, the token is the last entry's sequence number. */
import { InvalidArgumentError } from "../errors.js";
import type { HistoryEntry } from "../model.js";

/** One page of audit entries. */
export interface HistoryPage {
  entries: HistoryEntry[];
  nextPageToken: string;
}

/** The page size for a requested size: 50 by default, at most 1,000. */
export function historyPageSize(requested: number): number {
  if (requested < 0) throw new InvalidArgumentError("page_size", "must not be negative");
  return requested === 0 ? 50 : Math.min(requested, 1_000);
}

/** A token continuing after entry `seq` of `segmentId`. */
export function encodeHistoryToken(seq: number, segmentId: string): string {
  return Buffer.from(JSON.stringify({ s: seq, id: segmentId })).toString("base64url");
}

/** The sequence number to continue before; 0 for the first page. */
export function decodeHistoryToken(token: string, segmentId: string): number {
  if (token === "") return 0;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    parsed = undefined;
  }
  const { s, id } = (parsed ?? {}) as { s?: unknown; id?: unknown };
  if (typeof s !== "number" || !Number.isInteger(s) || s <= 0)
    throw new InvalidArgumentError("page_token", "is not a token returned by ListSegmentHistory");
  if (id !== segmentId) throw new InvalidArgumentError("page_token", "was issued for another segment");
  return s;
}
