/**
 * Bitmap arithmetic for membership changes. Bitmaps are treated as immutable once published:
 * every change builds a new bitmap and the caller swaps the reference, so a reader holding the
 * old one (a stream, a count) never sees a half-applied change.
 */
import { RoaringBitmap32 } from "./roaring.js";

/** What a change does to a membership: the uids that enter and the uids that leave. */
export interface MembershipDelta {
  added: RoaringBitmap32;
  removed: RoaringBitmap32;
}

/** The delta that adding `uids` to `current` makes: only uids not already members enter. */
export function addDelta(current: RoaringBitmap32, uids: RoaringBitmap32): MembershipDelta {
  return { added: RoaringBitmap32.andNot(uids, current), removed: new RoaringBitmap32() };
}

/** The delta that removing `uids` from `current` makes: only uids that are members leave. */
export function removeDelta(current: RoaringBitmap32, uids: RoaringBitmap32): MembershipDelta {
  return { added: new RoaringBitmap32(), removed: RoaringBitmap32.and(uids, current) };
}

/** The delta that makes `current` exactly `target`. */
export function replaceDelta(current: RoaringBitmap32, target: RoaringBitmap32): MembershipDelta {
  return { added: RoaringBitmap32.andNot(target, current), removed: RoaringBitmap32.andNot(current, target) };
}

/** A new bitmap: `current` with the delta applied. `current` is left untouched. */
export function applyDelta(current: RoaringBitmap32, delta: MembershipDelta): RoaringBitmap32 {
  const next = RoaringBitmap32.or(current, delta.added);
  next.andNotInPlace(delta.removed);
  return next;
}

/** Builds a bitmap from uids in any order (sorting first is far faster for large inputs). */
export function bitmapOf(uids: Uint32Array): RoaringBitmap32 {
  uids.sort();
  return new RoaringBitmap32(uids);
}

/** Portable Roaring serialization: the format persisted in the change log and snapshots. */
export function encodeBitmap(bitmap: RoaringBitmap32): Uint8Array {
  return bitmap.serialize("portable");
}

/** Inverse of encodeBitmap. */
export function decodeBitmap(bytes: Uint8Array): RoaringBitmap32 {
  return RoaringBitmap32.deserialize(bytes, "portable");
}
