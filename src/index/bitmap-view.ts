/**
 * A read-only membership test in JS over a Roaring bitmap's portable serialization
 * (github.com/RoaringBitmap/RoaringFormatSpec). BatchCheckMembership asks has() of one bitmap for
 * thousands of uids a call, and each `RoaringBitmap32.has` is an N-API call: the loop of them was
 * 22% of the service's busy time under 10,000-id calls (profile, 3M users). Written here because
 * no library reads the format in JS; it reads only what `has` needs.
 *
 * Bitmaps are replaced, never mutated (segment-bitmaps.ts), so a view made of one stays right for
 * as long as that bitmap is the one read. `viewOf` keeps one per bitmap in a WeakMap.
 */
import type { RoaringBitmap32 } from "./roaring.js";

const SERIAL_COOKIE_NO_RUNCONTAINER = 12346;
const SERIAL_COOKIE = 12347;
/** With run containers, the offset header is there only from this many containers on. */
const NO_OFFSET_THRESHOLD = 4;
/** An array container holds at most this many values; more is a bitset. */
const MAX_ARRAY = 4096;
const BITSET_BYTES = 8192;
const ARRAY = 0;
const BITSET = 1;
const RUN = 2;
/**
 * Views are made only of bitmaps up to this size: serializing is a copy on the event loop, once
 * per published bitmap (a 1 MiB bitset segment of 8M members copies in well under a millisecond).
 */
export const MAX_VIEW_BYTES = 4 << 20;

/** A bitmap's members, tested in JS. */
export class BitmapView {
  private readonly view: DataView;
  /** Per container, in key order: its key (high 16 bits), kind, byte offset, and value or run count. */
  private readonly keys: Uint16Array;
  private readonly kinds: Uint8Array;
  private readonly offsets: Uint32Array;
  private readonly counts: Uint32Array;

  constructor(bytes: Uint8Array) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.view = view;
    const cookie = view.getUint32(0, true);
    let size: number;
    let at: number;
    let runs: Uint8Array | undefined;
    if ((cookie & 0xffff) === SERIAL_COOKIE) {
      size = (cookie >>> 16) + 1;
      runs = bytes.subarray(4, 4 + Math.ceil(size / 8));
      at = 4 + runs.length;
    } else if (cookie === SERIAL_COOKIE_NO_RUNCONTAINER) {
      size = view.getUint32(4, true);
      at = 8;
    } else throw new Error(`bitmap view: not a portable Roaring serialization (cookie ${cookie})`);
    this.keys = new Uint16Array(size);
    this.kinds = new Uint8Array(size);
    this.offsets = new Uint32Array(size);
    this.counts = new Uint32Array(size);
    const header = at;
    at += 4 * size;
    // The offsets are written out, except in a small bitmap with runs: then containers just follow.
    const offsetsGiven = runs === undefined || size >= NO_OFFSET_THRESHOLD;
    if (offsetsGiven) at += 4 * size;
    for (let i = 0; i < size; i++) {
      this.keys[i] = view.getUint16(header + 4 * i, true);
      const cardinality = view.getUint16(header + 4 * i + 2, true) + 1;
      const isRun = runs !== undefined && ((runs[i >>> 3] ?? 0) >>> (i & 7)) & 1;
      const start = offsetsGiven ? view.getUint32(header + 4 * size + 4 * i, true) : at;
      if (isRun) {
        this.kinds[i] = RUN;
        this.counts[i] = view.getUint16(start, true);
        this.offsets[i] = start + 2;
        at = start + 2 + 4 * (this.counts[i] ?? 0);
      } else if (cardinality <= MAX_ARRAY) {
        this.kinds[i] = ARRAY;
        this.counts[i] = cardinality;
        this.offsets[i] = start;
        at = start + 2 * cardinality;
      } else {
        this.kinds[i] = BITSET;
        this.offsets[i] = start;
        at = start + BITSET_BYTES;
      }
    }
    if (at > bytes.byteLength) throw new Error("bitmap view: the serialization is cut short");
  }

  /** Whether `value` (a uint32) is a member. */
  has(value: number): boolean {
    const container = this.find(value >>> 16);
    if (container < 0) return false;
    const low = value & 0xffff;
    const offset = this.offsets[container] ?? 0;
    const kind = this.kinds[container];
    if (kind === BITSET) return ((this.view.getUint8(offset + (low >>> 3)) >>> (low & 7)) & 1) === 1;
    if (kind === ARRAY) return this.inArray(offset, this.counts[container] ?? 0, low);
    return this.inRuns(offset, this.counts[container] ?? 0, low);
  }

  /** The index of the container of `key`, −1 when there is none. */
  private find(key: number): number {
    const keys = this.keys;
    let lo = 0;
    let hi = keys.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const at = keys[mid] ?? 0;
      if (at < key) lo = mid + 1;
      else if (at > key) hi = mid - 1;
      else return mid;
    }
    return -1;
  }

  private inArray(offset: number, count: number, low: number): boolean {
    let lo = 0;
    let hi = count - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const at = this.view.getUint16(offset + 2 * mid, true);
      if (at < low) lo = mid + 1;
      else if (at > low) hi = mid - 1;
      else return true;
    }
    return false;
  }

  /** Runs are (start, length − 1) pairs in start order: find the last starting at or before `low`. */
  private inRuns(offset: number, count: number, low: number): boolean {
    let lo = 0;
    let hi = count - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.view.getUint16(offset + 4 * mid, true) <= low) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (found < 0) return false;
    const start = this.view.getUint16(offset + 4 * found, true);
    return low - start <= this.view.getUint16(offset + 4 * found + 2, true);
  }
}

const views = new WeakMap<RoaringBitmap32, BitmapView>();

/** A view of `bitmap`, made on first use; undefined for one over MAX_VIEW_BYTES (ask the bitmap itself). */
export function viewOf(bitmap: RoaringBitmap32): BitmapView | undefined {
  let view = views.get(bitmap);
  if (view === undefined) {
    if (bitmap.getSerializationSizeInBytes("portable") > MAX_VIEW_BYTES) return undefined;
    view = new BitmapView(bitmap.serialize("portable"));
    views.set(bitmap, view);
  }
  return view;
}
