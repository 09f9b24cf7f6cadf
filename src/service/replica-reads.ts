/**
 * What a client-side replica loads before following the change feed: a segment's whole bitmap
 * with the version it is, and the uids of user ids. Answered from memory; the bitmap is
 * serialized on libuv's thread pool, which is safe because published bitmaps are never mutated.
 */
import { isStale } from "../schedule/staleness.js";
import type { SegmentState } from "./segment-state.js";
import { checkUserIds } from "./validation.js";

/** Bitmap bytes per message at most: 4 MiB, gRPC's default receive limit, less room for the other fields. */
const MAX_CHUNK_BYTES = 4 * 1024 * 1024;
const ENVELOPE_BYTES = 256;

/** A segment's membership as portable Roaring bytes in chunks, and which version it is. */
export interface SegmentBitmap {
  version: number;
  versionAt: Date | null;
  stale: boolean;
  /** EVERYONE: every valid id is a member; the one chunk is empty. */
  everyone: boolean;
  /** Consecutive views of one serialization; at least one. */
  chunks: Uint8Array[];
}

/** Dependencies, built by the composition root. */
export interface ReplicaReadsDeps {
  state: SegmentState;
  maxIdsPerCall: number;
  /** The largest message the server sends: chunks stay below it too. */
  maxMessageBytes: number;
  /** Milliseconds since the epoch; the stale flag is judged against it. */
  now: () => number;
}

/** Bitmaps and uids for replicas. */
export class ReplicaReads {
  private readonly chunkBytes: number;

  constructor(private readonly deps: ReplicaReadsDeps) {
    this.chunkBytes = Math.max(1, Math.min(MAX_CHUNK_BYTES, deps.maxMessageBytes) - ENVELOPE_BYTES);
  }

  /** The uid of each id in request order, −1 for a user never seen. */
  resolveUserIds(userIds: readonly string[]): number[] {
    checkUserIds(userIds, this.deps.maxIdsPerCall);
    const { directory } = this.deps.state;
    return userIds.map((id) => directory.lookup(id) ?? -1);
  }

  /** The current bitmap of an ACTIVE or PAUSED segment, serialized in the portable format. */
  async bitmap(segmentId: string): Promise<SegmentBitmap> {
    const { state, now } = this.deps;
    const segment = state.servable(segmentId, "segment_id");
    // Taken in the same turn as `segment`: bitmap and version belong together.
    const members = state.bitmaps.get(segmentId);
    const answer = { version: segment.version, versionAt: segment.versionAt, stale: isStale(segment, now()) };
    if (segment.type === "EVERYONE") return { ...answer, everyone: true, chunks: [new Uint8Array(0)] };
    const bytes = await members.serializeAsync("portable");
    const chunks: Uint8Array[] = [];
    // Views of the one buffer, not copies.
    for (let offset = 0; offset < bytes.byteLength; offset += this.chunkBytes)
      chunks.push(bytes.subarray(offset, offset + this.chunkBytes));
    return { ...answer, everyone: false, chunks };
  }
}
