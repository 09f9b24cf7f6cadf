/** Paging of ListSegmentHistory: newest first, the token is the last entry's sequence number. */
import { InvalidArgumentError } from "../errors.js";
import type { HistoryEntry } from "../model.js";
import { signPageToken, tokenInteger, verifyPageToken } from "./page-token.js";

const METHOD = "ListSegmentHistory";

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
export function encodeHistoryToken(seq: number, segmentId: string, secret: Uint8Array): string {
  return signPageToken(METHOD, { s: seq, id: segmentId }, secret);
}

/** The sequence number to continue before; 0 for the first page. */
export function decodeHistoryToken(token: string, segmentId: string, secret: Uint8Array): number {
  if (token === "") return 0;
  const payload = verifyPageToken(token, METHOD, secret);
  if (payload.id !== segmentId) throw new InvalidArgumentError("page_token", "was issued for another segment");
  // Sequence numbers are bigserial values we handed out: positive and within a JS integer.
  return tokenInteger(payload, "s", 1, Number.MAX_SAFE_INTEGER);
}
