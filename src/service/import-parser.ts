/**
 * ImportMembers input: `user_ids` lists and newline-separated text, in arrival order. Text may
 * split a line (or a UTF-8 sequence) across messages. Bad entries are counted and the first 100
 * kept with their 1-based entry number; good ones are handed out chunk by chunk.
 */
import { UserIdChunk } from "../store/user-id-chunk.js";
import { USER_ID_MAX_BYTES } from "./validation.js";

export const INVALID_LINES_KEPT = 100;

/** A rejected entry. */
export interface InvalidEntry {
  line: number;
  reason: string;
}

const LF = 0x0a;
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Accumulates an import's entries; holds at most one partial text line between chunks. */
export class ImportParser {
  /** Entries seen so far (text lines, blank ones included, and user_ids elements). */
  private entries = 0;
  private pending: Uint8Array = new Uint8Array(0);
  invalidCount = 0;
  readonly invalid: InvalidEntry[] = [];

  /**
   * The valid ids of one message: its `user_ids`, then the complete lines of its `text`. Ids the
   * wire decoder already checked (a UserIdChunk) are counted and handed on as they are.
   */
  push(userIds: readonly string[] | UserIdChunk, text: Uint8Array): (string[] | UserIdChunk)[] {
    const valid: string[] = [];
    const batches: (string[] | UserIdChunk)[] = [valid];
    if (userIds instanceof UserIdChunk) {
      this.entries += userIds.length;
      batches.unshift(userIds);
    } else for (const id of userIds) this.accept(id, valid, false);
    if (text.byteLength === 0) return batches;
    const bytes = this.pending.byteLength === 0 ? text : concat(this.pending, text);
    let start = 0;
    for (let lf = bytes.indexOf(LF); lf >= 0; lf = bytes.indexOf(LF, start)) {
      this.acceptLine(bytes.subarray(start, lf), valid);
      start = lf + 1;
    }
    // Copy the tail: the message buffer it points into is not ours to keep.
    this.pending = bytes.slice(start);
    return batches;
  }

  /** The valid id of a final line without a newline, if any. */
  finish(): string[] {
    const valid: string[] = [];
    if (this.pending.byteLength > 0) this.acceptLine(this.pending, valid);
    this.pending = new Uint8Array(0);
    return valid;
  }

  private acceptLine(raw: Uint8Array, valid: string[]): void {
    const line = raw.byteLength > 0 && raw[raw.byteLength - 1] === 0x0d ? raw.subarray(0, raw.byteLength - 1) : raw;
    let text: string;
    try {
      text = utf8.decode(line);
    } catch {
      this.entries++;
      this.reject("not valid UTF-8");
      return;
    }
    this.accept(text.trim(), valid, true);
  }

  private accept(id: string, valid: string[], fromText: boolean): void {
    this.entries++;
    if (id === "") {
      // Blank text lines are skipped silently; an empty user_ids element is a client bug.
      if (!fromText) this.reject("empty id");
      return;
    }
    if (id.length * 3 > USER_ID_MAX_BYTES && Buffer.byteLength(id, "utf8") > USER_ID_MAX_BYTES) {
      this.reject(`longer than ${USER_ID_MAX_BYTES} bytes`);
      return;
    }
    // Postgres text cannot hold U+0000, and the other RPCs refuse such ids too.
    if (id.includes("\u0000")) {
      this.reject("contains U+0000 (NUL)");
      return;
    }
    valid.push(id);
  }

  private reject(reason: string): void {
    this.invalidCount++;
    if (this.invalid.length < INVALID_LINES_KEPT) this.invalid.push({ line: this.entries, reason });
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a, 0);
  out.set(b, a.byteLength);
  return out;
}
