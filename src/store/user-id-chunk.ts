/**
 * A chunk of user ids as the UTF-8 bytes they were read in, back to back. A query result of
 * millions of ids is resolved to uids straight from these bytes (UserDirectory.lookupUtf8): no
 * JavaScript string is made per id, only for the few a caller asks for by `id(i)` (unknown users).
 * The builder reuses its buffers for the next chunk, so a chunk is only valid while the call it
 * was handed to runs (until its promise settles): copy out whatever must outlive it.
 */

const encoder = new TextEncoder();
// A leading U+FEFF is part of an id, not a byte-order mark.
const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

/** Ids `0 … length − 1`; id i is `bytes[i === 0 ? 0 : ends[i − 1], ends[i])`. */
export class UserIdChunk implements Iterable<string> {
  constructor(
    readonly bytes: Uint8Array,
    readonly ends: Uint32Array,
  ) {}

  /** How many ids the chunk holds. */
  get length(): number {
    return this.ends.length;
  }

  /** Id `i` as a string. */
  id(i: number): string {
    return decoder.decode(this.bytes.subarray(i === 0 ? 0 : (this.ends[i - 1] ?? 0), this.ends[i] ?? 0));
  }

  /** Every id as a string, in order (for callers that want strings; allocates one per id). */
  *[Symbol.iterator](): Iterator<string> {
    for (let i = 0; i < this.ends.length; i++) yield this.id(i);
  }
}

/** Fills a chunk id by id; `take()` hands it over and starts the next one in the same buffers. */
export class UserIdChunkBuilder {
  private bytes: Uint8Array;
  private ends: Uint32Array;
  private fill = 0;
  private count = 0;

  constructor(private readonly capacity: number) {
    this.bytes = new Uint8Array(capacity * 32);
    this.ends = new Uint32Array(capacity);
  }

  /** Ids added since the last take. */
  get length(): number {
    return this.count;
  }

  /** Whether the chunk holds `capacity` ids. */
  get full(): boolean {
    return this.count >= this.capacity;
  }

  /**
   * Adds the id whose UTF-8 bytes are `source[start, end)`, unless they hold byte `refuse`: then
   * it adds nothing and returns false (one pass both checks and copies).
   */
  addBytes(source: Uint8Array, start: number, end: number, refuse = -1): boolean {
    const length = end - start;
    if (this.fill + length > this.bytes.length) this.grow(length);
    const bytes = this.bytes;
    const fill = this.fill;
    // A loop beats set(subarray()) for ids this short: subarray allocates.
    for (let i = 0; i < length; i++) {
      const byte = source[start + i] ?? 0;
      if (byte === refuse) return false;
      bytes[fill + i] = byte;
    }
    this.fill = fill + length;
    if (this.count === this.ends.length) this.ends = grown(this.ends, this.ends.length * 2);
    this.ends[this.count++] = this.fill;
    return true;
  }

  /** Adds `id` (a string: an id that needed decoding first). */
  addString(id: string): void {
    const encoded = encoder.encode(id);
    this.addBytes(encoded, 0, encoded.length);
  }

  /**
   * The ids added since the last take, as a chunk; the builder starts afresh, overwriting the
   * chunk's bytes with the next ids it is given (so hand the chunk on before adding more).
   */
  take(): UserIdChunk {
    const chunk = new UserIdChunk(this.bytes.subarray(0, this.fill), this.ends.subarray(0, this.count));
    this.fill = 0;
    this.count = 0;
    return chunk;
  }

  private grow(need: number): void {
    this.bytes = grown(this.bytes.subarray(0, this.fill), Math.max(this.bytes.length * 2, this.fill + need));
  }
}

/** A copy of `array` in a new array of `length` elements. */
function grown<T extends Uint8Array | Uint32Array>(array: T, length: number): T {
  const copy = new (array.constructor as new (length: number) => T)(length);
  copy.set(array);
  return copy;
}
