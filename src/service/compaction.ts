/**
 * Compaction, off the request path: once a segment's log since its newest snapshot passes a
 * count or size threshold, write a snapshot of the published bitmap (immutable, so no lock is
 * needed); and prune history older than the retention period, keeping the base it rebuilds from.
 */
import type { Logger } from "pino";
import { encodeBitmap } from "../index/membership.js";
import type { SegmentStore } from "../store/segment-store.js";
import type { SegmentState } from "./segment-state.js";

/** When to snapshot and what to keep. */
export interface CompactionPolicy {
  /** Snapshot after this many changes since the last snapshot… */
  maxChanges: number;
  /** …or once the changes' bytes exceed the snapshot's size (at least this many bytes). */
  minBytes: number;
  /** History younger than this is always rebuildable. */
  retentionMs: number;
}

/** Dependencies, built by the composition root. */
export interface CompactorDeps {
  state: SegmentState;
  store: SegmentStore;
  clock: () => Date;
  log: Logger;
  policy: CompactionPolicy;
  /** Told after each pass the bytes of the change log and of snapshots, for /metrics. */
  recordStorage?: (changeLogBytes: number, snapshotBytes: number) => void;
}

/** Snapshots and prunes segment histories, one pass at a time. */
export class Compactor {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> = Promise.resolve();

  constructor(private readonly deps: CompactorDeps) {}

  /** Runs a pass every `intervalMs` until stopped. */
  start(intervalMs: number): void {
    this.timer = setInterval(() => {
      this.running = this.runOnce().catch((error: unknown) => this.deps.log.warn({ err: error }, "compaction pass failed; will retry"));
    }, intervalMs);
    this.timer.unref();
  }

  /** Stops the timer and waits for a pass in progress. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** One pass over every segment; returns how many snapshots it wrote and histories it pruned. */
  async runOnce(): Promise<{ snapshots: number; pruned: number }> {
    const { state, store, clock, policy } = this.deps;
    let snapshots = 0;
    for (const [id, log] of state.unsnapshotted) {
      const segment = state.segments.get(id);
      if (segment === undefined || log.count === 0) continue;
      // Version and bitmap are published together, so this pair is consistent.
      const members = state.bitmaps.get(id);
      const size = members.getSerializationSizeInBytes("portable");
      if (log.count < policy.maxChanges && log.bytes < Math.max(policy.minBytes, size)) continue;
      await store.insertSnapshot(id, segment.version, encodeBitmap(members), clock());
      // Changes published while the snapshot was written stay counted.
      const now = state.unsnapshotted.get(id) ?? log;
      state.unsnapshotted.set(id, { count: now.count - log.count, bytes: now.bytes - log.bytes });
      snapshots++;
    }
    const horizon = new Date(clock().getTime() - policy.retentionMs);
    const candidates = await store.pruneCandidates(horizon);
    for (const { segmentId, base } of candidates) await store.pruneHistory(segmentId, base);
    const pruned = candidates.length;
    if (this.deps.recordStorage !== undefined) {
      const bytes = await store.storageBytes();
      this.deps.recordStorage(bytes.changeLog, bytes.snapshots);
    }
    return { snapshots, pruned };
  }
}
