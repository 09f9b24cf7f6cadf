/**
 * `roaring` is CommonJS without named ESM exports; this is the one place that bridges it, so
 * the rest of the code imports RoaringBitmap32 as usual.
 */
import roaring from "roaring";

export const RoaringBitmap32 = roaring.RoaringBitmap32;
export type RoaringBitmap32 = InstanceType<typeof roaring.RoaringBitmap32>;
