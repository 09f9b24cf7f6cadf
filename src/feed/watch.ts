/**
 * One WatchMembership stream. The replay→live handoff: subscribe to live changes first (they
 * buffer), and in the same synchronous step read each segment's current version; replay the
 * change log from the client's cursor up to that version; then drain the buffer and follow live
 * changes, skipping versions already sent. Every version after the step is in the buffer and
 * every version up to it is in the log, so nothing is missed or sent twice.
 */
import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from "../errors.js";
import type { Segment } from "../model.js";
import type { SegmentState } from "../service/segment-state.js";
import { checkSegmentList } from "../service/validation.js";
import type { SegmentStore } from "../store/segment-store.js";
import type { ChangeFeed, FeedEvent } from "./change-feed.js";
import { replayMerged, SegmentLog } from "./change-log.js";
import { type DeltaFormat, sendDelta, type VersionDelta, type WatchMessage } from "./delta-messages.js";

/** What a stream asks for. */
export interface WatchRequest {
  segmentIds: readonly string[];
  /** Per segment: send versions after this one. Absent segments start at their current version. */
  fromVersions: ReadonlyMap<string, number>;
  format: DeltaFormat;
}

/** Dependencies, built by the composition root. */
export interface WatchDeps {
  state: SegmentState;
  store: SegmentStore;
  feed: ChangeFeed;
  maxMessageBytes: number;
}

/** Serves WatchMembership streams. */
export class MembershipWatcher {
  constructor(private readonly deps: WatchDeps) {}

  /** Streams the changes `request` asks for until the client cancels or a watched segment is archived or deleted. */
  async watch(request: WatchRequest, send: (message: WatchMessage) => Promise<void>, signal: AbortSignal): Promise<void> {
    const { state, feed } = this.deps;
    const ids = watchable(state, request.segmentIds);
    checkCursors(state, ids, request.fromVersions);
    // The handoff: nothing may run between subscribing and reading the current versions.
    const subscription = feed.subscribe(ids);
    try {
      const stream = new StreamState(this.deps, request.format, send);
      const logs = ids.map((id) => {
        const current = state.require(id).version;
        const from = request.fromVersions.get(id) ?? current;
        stream.sent.set(id, from);
        return new SegmentLog(this.deps.store, id, from, current);
      });
      await stream.replay(logs);
      for (;;) await stream.follow(await subscription.next(signal));
    } finally {
      subscription.close();
    }
  }
}

/** What one stream has sent, and how it sends more. */
class StreamState {
  /** Per segment: the last version fully sent. */
  readonly sent = new Map<string, number>();

  constructor(
    private readonly deps: WatchDeps,
    private readonly format: DeltaFormat,
    private readonly send: (message: WatchMessage) => Promise<void>,
  ) {}

  /** Sends every change of `logs`, merged by commit time. */
  async replay(logs: readonly SegmentLog[]): Promise<void> {
    await replayMerged(logs, (change) => this.deliver(change));
  }

  /** Handles one live event: send it (after any versions missing before it), or end the stream. */
  async follow(event: FeedEvent): Promise<void> {
    switch (event.kind) {
      case "change": {
        const { change } = event;
        const sent = this.sent.get(change.segmentId) ?? 0;
        // Never expected (the buffer starts where the replay ends), but a version sent twice would be worse than a skip.
        if (change.version <= sent) return;
        if (change.version > sent + 1) await this.fill(change.segmentId, change.version - 1);
        await this.deliver(change);
        return;
      }
      case "reloaded":
        // Versions committed by another process: only the log has them.
        await this.fill(event.segment.id, event.segment.version);
        stillWatchable(event.segment.id, event.segment);
        return;
      case "status":
        stillWatchable(event.segmentId, event.segment);
        return;
    }
  }

  /** Sends the logged versions of `segmentId` after the last one sent, up to `upTo`. */
  private async fill(segmentId: string, upTo: number): Promise<void> {
    const sent = this.sent.get(segmentId) ?? 0;
    if (upTo > sent) await this.replay([new SegmentLog(this.deps.store, segmentId, sent, upTo)]);
  }

  private async deliver(delta: VersionDelta): Promise<void> {
    const { state, maxMessageBytes } = this.deps;
    await sendDelta({ directory: state.directory, maxMessageBytes }, this.format, delta, async (message) => {
      await this.send(message);
      // A burst of buffered versions must not hold the event loop: one turn per message.
      await new Promise((resolve) => setImmediate(resolve));
    });
    this.sent.set(delta.segmentId, delta.version);
  }
}

/** The distinct requested segments, each STATIC or DYNAMIC and ACTIVE or PAUSED. */
function watchable(state: SegmentState, segmentIds: readonly string[]): string[] {
  checkSegmentList(segmentIds, "segment_ids", 1);
  segmentIds.forEach((id, i) => {
    const segment = state.servable(id, `segment_ids[${i}]`);
    if (segment.type === "EVERYONE") {
      throw new FailedPreconditionError("type", `segment ${id} is EVERYONE: every user is a member, so it has no change feed`);
    }
  });
  return [...new Set(segmentIds)];
}

/** Every cursor names a watched segment and a version it has reached. */
function checkCursors(state: SegmentState, ids: readonly string[], fromVersions: ReadonlyMap<string, number>): void {
  for (const [id, version] of fromVersions) {
    const field = `from_versions[${JSON.stringify(id.slice(0, 64))}]`;
    if (!ids.includes(id)) throw new InvalidArgumentError(field, "names a segment that is not in segment_ids");
    const current = state.require(id).version;
    if (version > current) throw new InvalidArgumentError(field, `version ${version} is newer than the current version ${current}`);
  }
}

/** Ends the stream when a watched segment was archived (FAILED_PRECONDITION) or deleted (NOT_FOUND). */
function stillWatchable(id: string, segment: Segment | undefined): void {
  if (segment === undefined) throw new NotFoundError("segment", id);
  if (segment.status === "ARCHIVED" || segment.status === "DRAFT") {
    throw new FailedPreconditionError("status", `segment ${id} is now ${segment.status}; the watch has ended`);
  }
}
