/** Segment ids: UUIDv7, so sorting by id is sorting by creation time (stable listing order). */
import { randomBytes } from "node:crypto";

// The shape check lives with the filter validator (src/query), which must not import src/service.
export { isSegmentId } from "../query/segment-refs.js";

/** A new UUIDv7 for a segment created at `now`. */
export function newSegmentId(now: Date): string {
  const bytes = randomBytes(16);
  bytes.writeUIntBE(now.getTime(), 0, 6);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x70;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
