/**
 * Retained history for the change feed: each segment's logged changes in version order, merged
 * across segments by commit time. Bitmaps are read in batches of bounded size, so a long history
 * (or one huge evaluation) never sits in memory at once.
 */
import { FailedPreconditionError } from "../errors.js";
import type { ChangeInfo, SegmentStore, StoredChange } from "../store/segment-store.js";

/** Change infos read per query: small rows, no bitmaps. */
const INFO_PAGE = 1_000;
/** Bitmap bytes read per query for one segment (at least one change, however large). */
const BATCH_BYTES = 1 << 20;

/** A retained change with its bitmaps as stored (portable Roaring). */
export interface LoggedChange {
  segmentId: string;
  version: number;
  at: Date;
  memberCount: number;
  addedBytes: Uint8Array;
  removedBytes: Uint8Array;
}

/** One segment's changes in (after, upTo], read lazily in version order. */
export class SegmentLog {
  private infos: ChangeInfo[] = [];
  private loaded: StoredChange[] = [];
  /** The last version whose info has been read. */
  private listed: number;
  /** The version `take` returns next. */
  private expected: number;

  constructor(
    private readonly store: SegmentStore,
    readonly segmentId: string,
    after: number,
    private readonly upTo: number,
  ) {
    this.listed = after;
    this.expected = after + 1;
  }

  /** The next change's info, or undefined once `upTo` has been taken. */
  async peek(): Promise<ChangeInfo | undefined> {
    if (this.infos.length === 0 && this.listed < this.upTo) {
      this.infos = await this.store.changeInfo(this.segmentId, this.listed, this.upTo, INFO_PAGE);
      const last = this.infos[this.infos.length - 1];
      if (last === undefined) throw await this.missing();
      this.listed = last.version;
    }
    const info = this.infos[0];
    if (info !== undefined && info.version !== this.expected) throw await this.missing();
    return info;
  }

  /** The next change with its bitmaps. */
  async take(): Promise<LoggedChange> {
    const info = await this.peek();
    if (info === undefined) throw new Error(`segment ${this.segmentId}: nothing left to take after version ${this.upTo}`);
    if (this.loaded.length === 0) this.loaded = await this.store.loadChanges(this.segmentId, info.version - 1, INFO_PAGE, this.batchEnd());
    const change = this.loaded.shift();
    if (change?.version !== info.version) throw await this.missing();
    this.infos.shift();
    this.expected++;
    const { segmentId } = this;
    return {
      segmentId,
      version: info.version,
      at: info.at,
      memberCount: info.memberCount,
      addedBytes: change.added,
      removedBytes: change.removed,
    };
  }

  /** The last version of the next batch: as many listed changes as fit BATCH_BYTES, at least one. */
  private batchEnd(): number {
    let end = this.expected;
    let total = 0;
    for (const info of this.infos) {
      if (total > 0 && total + info.bytes > BATCH_BYTES) break;
      total += info.bytes;
      end = info.version;
    }
    return end;
  }

  /** Why the expected version is not in the log: pruned meanwhile (FAILED_PRECONDITION), else corruption. */
  private async missing(): Promise<Error> {
    const oldest = await this.store.historyFrom(this.segmentId);
    const cursor = this.expected - 1;
    if (cursor < oldest) return notRetained(this.segmentId, cursor, oldest);
    return new Error(`segment ${this.segmentId}: the change log has no version ${this.expected}`);
  }
}

/** FAILED_PRECONDITION for a cursor older than the retained history. */
export function notRetained(segmentId: string, cursor: number, oldest: number): FailedPreconditionError {
  return new FailedPreconditionError(
    "history",
    `segment ${segmentId}: changes after version ${cursor} are no longer retained; the oldest retained version is ${oldest}. Load the current membership (GetSegmentBitmap) and watch from its version`,
  );
}

/** Delivers every change of `logs`, one at a time: per segment in version order, across segments by commit time. */
export async function replayMerged(logs: readonly SegmentLog[], deliver: (change: LoggedChange) => Promise<void>): Promise<void> {
  for (;;) {
    let next: SegmentLog | undefined;
    let earliest = Number.POSITIVE_INFINITY;
    for (const log of logs) {
      const info = await log.peek();
      // Strictly earlier: on a tie the segment listed first goes first.
      if (info !== undefined && info.at.getTime() < earliest) {
        next = log;
        earliest = info.at.getTime();
      }
    }
    if (next === undefined) return;
    await deliver(await next.take());
  }
}
