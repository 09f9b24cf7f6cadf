/**
 * The membership bitmap of every loaded segment. A bitmap is replaced, never mutated, so the
 * reference a reader took stays consistent (see membership.ts).
 */
import { RoaringBitmap32 } from "./roaring.js";

/** Segment id → current membership bitmap. */
export class SegmentBitmaps {
  private readonly bySegment = new Map<string, RoaringBitmap32>();
  /** Bumped by every set and delete, so views derived from the bitmaps know when to rebuild. */
  generation = 0;

  /** The current bitmap of `segmentId`; an empty one for a segment with no members yet. */
  get(segmentId: string): RoaringBitmap32 {
    let bitmap = this.bySegment.get(segmentId);
    if (bitmap === undefined) {
      bitmap = new RoaringBitmap32();
      this.bySegment.set(segmentId, bitmap);
    }
    return bitmap;
  }

  /** Publishes `bitmap` as the membership of `segmentId` (a reference swap). */
  set(segmentId: string, bitmap: RoaringBitmap32): void {
    this.generation++;
    this.bySegment.set(segmentId, bitmap);
  }

  /** Forgets a deleted segment. */
  delete(segmentId: string): void {
    this.generation++;
    this.bySegment.delete(segmentId);
  }

  /** Serialized size of every bitmap, for memory reporting. */
  sizeInBytes(): number {
    let total = 0;
    for (const bitmap of this.bySegment.values()) total += bitmap.getSerializationSizeInBytes("portable");
    return total;
  }
}
