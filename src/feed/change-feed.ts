/**
 * The change feed's publish/subscribe hub. SegmentState tells it of every committed change, after
 * COMMIT and in commit order; it hands each to the subscriptions watching that segment, which
 * buffer it until their stream takes it. Buffers are bounded: a reader that falls too far behind
 * live changes is ended with RESOURCE_EXHAUSTED instead of being buffered for without limit, and
 * reconnects from its last complete versions, which are then replayed from the change log.
 */
import { ResourceExhaustedError, UnavailableError } from "../errors.js";
import type { Segment } from "../model.js";
import type { MembershipChange, StateListener } from "../service/segment-state.js";

/** What a subscription delivers, in commit order. */
export type FeedEvent =
  | { kind: "change"; change: MembershipChange }
  /** The segment was re-read from the store: versions up to its version may be known only to the log. */
  | { kind: "reloaded"; segment: Segment }
  /** The segment's status changed, or it was deleted (`segment` undefined). */
  | { kind: "status"; segmentId: string; segment: Segment | undefined };

/** How far a reader may fall behind live changes before its stream is ended. */
export interface FeedBound {
  /** Events buffered (versions, mostly). */
  maxEvents: number;
  /** Bytes of buffered deltas (their portable Roaring size); one event alone may exceed it. */
  maxBytes: number;
}

/** The default bound: 1,000 versions or 64 MiB of deltas, whichever comes first. */
export const DEFAULT_FEED_BOUND: FeedBound = { maxEvents: 1_000, maxBytes: 64 * 1024 * 1024 };

/** Live changes of some segments, buffered for one reader. */
export class Subscription {
  private queue: FeedEvent[] = [];
  private bytes = 0;
  private ended: Error | undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly hub: ChangeFeed,
    readonly segmentIds: readonly string[],
    private readonly bound: FeedBound,
  ) {}

  /** Buffers `event` (the hub calls this); ends the subscription when the reader is too far behind. */
  push(event: FeedEvent): void {
    if (this.ended !== undefined) return;
    this.queue.push(event);
    this.bytes += sizeOf(event);
    const { maxEvents, maxBytes } = this.bound;
    if (this.queue.length > maxEvents || (this.queue.length > 1 && this.bytes > maxBytes)) {
      this.end(
        new ResourceExhaustedError(
          "watch_buffer",
          `the reader fell more than ${maxEvents} versions or ${maxBytes >> 20} MiB behind live changes; reconnect with from_versions set to the last version received with version_complete for each segment (the missed versions are replayed from the change log)`,
        ),
      );
      return;
    }
    this.wake?.();
  }

  /** Ends the subscription: buffered events are dropped and `next` fails with `error`. */
  end(error: Error): void {
    if (this.ended !== undefined) return;
    this.ended = error;
    this.queue = [];
    this.bytes = 0;
    this.hub.unsubscribe(this);
    this.wake?.();
  }

  /** Stops following (the stream is over). */
  close(): void {
    this.end(new Error("subscription closed"));
  }

  /** The next event, once there is one; rejects with the subscription's end or the signal's reason. */
  async next(signal: AbortSignal): Promise<FeedEvent> {
    for (;;) {
      if (this.ended !== undefined) throw this.ended;
      const event = this.queue.shift();
      if (event !== undefined) {
        this.bytes -= sizeOf(event);
        return event;
      }
      signal.throwIfAborted();
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => {
          this.wake = undefined;
          reject(signal.reason);
        };
        this.wake = () => {
          this.wake = undefined;
          signal.removeEventListener("abort", onAbort);
          resolve();
        };
        signal.addEventListener("abort", onAbort, { once: true });
      });
    }
  }
}

/** Fans committed changes out to the subscriptions of each segment. */
export class ChangeFeed implements StateListener {
  private readonly bySegment = new Map<string, Set<Subscription>>();
  private closed: Error | undefined;

  constructor(private readonly bound: FeedBound = DEFAULT_FEED_BOUND) {}

  /** Starts buffering every later event of `segmentIds` for one reader. */
  subscribe(segmentIds: readonly string[]): Subscription {
    if (this.closed !== undefined) throw this.closed;
    const subscription = new Subscription(this, segmentIds, this.bound);
    for (const id of segmentIds) {
      let subscribers = this.bySegment.get(id);
      if (subscribers === undefined) {
        subscribers = new Set();
        this.bySegment.set(id, subscribers);
      }
      subscribers.add(subscription);
    }
    return subscription;
  }

  /** Stops delivering to `subscription`. */
  unsubscribe(subscription: Subscription): void {
    for (const id of subscription.segmentIds) {
      const subscribers = this.bySegment.get(id);
      subscribers?.delete(subscription);
      if (subscribers?.size === 0) this.bySegment.delete(id);
    }
  }

  /** Ends every subscription and refuses new ones (shutdown): readers reconnect from their last complete versions. */
  close(): void {
    this.closed = new UnavailableError(
      "the server is shutting down; reconnect with from_versions set to the last version received with version_complete for each segment",
    );
    for (const subscribers of [...this.bySegment.values()]) for (const s of [...subscribers]) s.end(this.closed);
  }

  membershipChanged(change: MembershipChange): void {
    this.deliver(change.segmentId, { kind: "change", change });
  }

  reloaded(segment: Segment): void {
    this.deliver(segment.id, { kind: "reloaded", segment });
  }

  statusChanged(id: string, segment: Segment | undefined): void {
    this.deliver(id, { kind: "status", segmentId: id, segment });
  }

  private deliver(segmentId: string, event: FeedEvent): void {
    const subscribers = this.bySegment.get(segmentId);
    // A copy: a push that overflows unsubscribes while we iterate.
    if (subscribers !== undefined) for (const subscription of [...subscribers]) subscription.push(event);
  }
}

function sizeOf(event: FeedEvent): number {
  return event.kind === "change" ? event.change.addedBytes.byteLength + event.change.removedBytes.byteLength : 0;
}
