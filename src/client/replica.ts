/**
 * The client-side replica (flag-evaluation mode): a live in-process copy of some segments'
 * memberships, answering `has(userId, segmentId)` synchronously from Roaring bitmaps — no RPC on
 * the path, no promise, no allocation once a user's uid is cached.
 *
 * It loads each segment's bitmap with GetSegmentBitmap, then follows WatchMembership in
 * DELTA_FORMAT_ROARING from the versions it loaded, applying each version whole, in order. A gap,
 * a size that disagrees with the server's member_count, or history that no longer reaches back
 * reloads the segment. A broken feed is reopened with backoff from the versions held; meanwhile
 * the replica keeps answering from what it has and reports itself `lagging`.
 *
 * Users: answers need the user's uid, resolved with ResolveUserIds in batches and cached (uids
 * never change). `has()` answers undefined for a user not resolved yet and queues it; `check()`
 * and `prepare()` resolve first. A user the server has never seen (uid −1) is a member of no
 * STATIC or DYNAMIC segment until a change names them, and any such change reaches the replica
 * as a version with entered members: before applying one, the replica re-resolves its unknown
 * users, so a cached "unknown" never hides a member. EVERYONE segments answer true for any id.
 */
import type { MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { status as grpcStatus, type ServiceError } from "@grpc/grpc-js";
import roaring from "roaring";
import {
  DeltaFormat,
  type GetSegmentBitmapResponseSchema,
  type ResolveUserIdsResponseSchema,
  type WatchMembershipRequestSchema,
  type WatchMembershipResponseSchema,
} from "../gen/segments/v1/membership_service_pb.js";

const { RoaringBitmap32 } = roaring;
type Bitmap = InstanceType<typeof RoaringBitmap32>;
type Change = MessageShape<typeof WatchMembershipResponseSchema>;

/** The MembershipService calls the replica makes: `SegmentsClient.membership` or `createClient(MembershipService, …)`. */
export interface ReplicaSource {
  getSegmentBitmap(request: { segmentId: string }): AsyncIterable<MessageShape<typeof GetSegmentBitmapResponseSchema>>;
  resolveUserIds(request: { userIds: string[] }): Promise<MessageShape<typeof ResolveUserIdsResponseSchema>>;
  watchMembership(
    request: MessageInitShape<typeof WatchMembershipRequestSchema>,
    options?: { signal?: AbortSignal },
  ): AsyncIterable<Change>;
}

/** What the replica says about one (user, segment) pair, and the version it answered from. */
export interface ReplicaAnswer {
  member: boolean;
  version: number;
}

/** loading: first bitmaps not loaded yet; live: following the feed; lagging: feed broken, reconnecting; closed. */
export type ReplicaState = "loading" | "live" | "lagging" | "closed";

/** Where the replica stands. */
export interface ReplicaStatus {
  state: ReplicaState;
  /** While lagging: milliseconds since the feed broke (changes made since may be missing). */
  lagMs: number;
  /** The version held of each segment. */
  versions: Record<string, number>;
  /** The last error that broke the feed, if any. */
  lastError: string | undefined;
}

/** A version the replica applied: when the server committed it and when it was applied here. */
export interface AppliedChange {
  segmentId: string;
  version: number;
  committedAt: Date | undefined;
  appliedAt: Date;
}

/** Tunables. */
export interface ReplicaOptions {
  /** Most uids cached (oldest dropped first); default 1,000,000 (~100 B each). */
  maxCachedUsers?: number;
  /** Longest wait between reconnect attempts; default 5 s. */
  maxBackoffMs?: number;
}

interface Held {
  bitmap: Bitmap;
  version: number;
  everyone: boolean;
}

const RESOLVE_BATCH = 100_000;

/** A live copy of some segments' memberships. Open with `SegmentReplica.open`. */
export class SegmentReplica {
  private readonly held = new Map<string, Held>();
  private readonly uids = new Map<string, number>();
  private readonly unknown = new Set<string>();
  private readonly pending = new Set<string>();
  private resolving: Promise<void> | undefined;
  private state: ReplicaState = "loading";
  private brokenAt = 0;
  private lastError: string | undefined;
  private watch: AbortController | undefined;
  private readonly listeners = new Set<(change: AppliedChange) => void>();
  private readonly maxCachedUsers: number;
  private readonly maxBackoffMs: number;

  private constructor(
    private readonly client: ReplicaSource,
    private readonly segmentIds: readonly string[],
    options: ReplicaOptions,
  ) {
    this.maxCachedUsers = options.maxCachedUsers ?? 1_000_000;
    this.maxBackoffMs = options.maxBackoffMs ?? 5_000;
  }

  /** Loads `segmentIds` and starts following their changes; resolves once the replica is live. */
  static async open(client: ReplicaSource, segmentIds: readonly string[], options: ReplicaOptions = {}): Promise<SegmentReplica> {
    const replica = new SegmentReplica(client, [...new Set(segmentIds)], options);
    for (const id of replica.segmentIds) await replica.load(id);
    replica.state = "live";
    void replica.follow();
    return replica;
  }

  /** Whether `userId` is in `segmentId` at the version held; undefined while the user's uid is not cached (it is then fetched). */
  has(userId: string, segmentId: string): ReplicaAnswer | undefined {
    const held = this.held.get(segmentId);
    if (held === undefined) throw new RangeError(`segment ${segmentId} is not replicated here`);
    if (held.everyone) return { member: userId.length > 0, version: held.version };
    const uid = this.uids.get(userId);
    if (uid === undefined) {
      if (this.unknown.has(userId)) return { member: false, version: held.version };
      this.queue(userId);
      return undefined;
    }
    return { member: held.bitmap.has(uid), version: held.version };
  }

  /** Like `has`, resolving the user's uid first when needed. */
  async check(userId: string, segmentId: string): Promise<ReplicaAnswer> {
    const answer = this.has(userId, segmentId);
    if (answer !== undefined) return answer;
    await this.prepare([userId]);
    return this.has(userId, segmentId) ?? { member: false, version: this.held.get(segmentId)?.version ?? 0 };
  }

  /** Resolves and caches the uids of `userIds` (batched), so `has()` answers them at once. */
  async prepare(userIds: readonly string[]): Promise<void> {
    for (const id of userIds) if (!this.uids.has(id) && !this.unknown.has(id)) this.pending.add(id);
    while (this.pending.size > 0 || this.resolving !== undefined) {
      this.resolving ??= this.resolvePending().finally(() => {
        this.resolving = undefined;
      });
      await this.resolving;
    }
  }

  /** Calls `listener` after each version applied (for freshness metrics). Returns an unsubscribe function. */
  onChange(listener: (change: AppliedChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Where the replica stands. */
  status(): ReplicaStatus {
    const versions: Record<string, number> = {};
    for (const [id, held] of this.held) versions[id] = held.version;
    const lagMs = this.state === "lagging" ? Date.now() - this.brokenAt : 0;
    return { state: this.state, lagMs, versions, lastError: this.lastError };
  }

  /** Stops following the feed. Answers keep coming from the last versions held. */
  close(): void {
    this.state = "closed";
    this.watch?.abort();
  }

  private closed(): boolean {
    return this.state === "closed";
  }

  private queue(userId: string): void {
    this.pending.add(userId);
    if (this.resolving === undefined) void this.prepare([]).catch(() => undefined);
  }

  private async resolvePending(): Promise<void> {
    const ids = [...this.pending].slice(0, RESOLVE_BATCH);
    for (const id of ids) this.pending.delete(id);
    await this.resolve(ids);
  }

  private async resolve(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    const { uids } = await this.client.resolveUserIds({ userIds: ids });
    ids.forEach((id, i) => {
      const uid = Number(uids[i] ?? -1n);
      if (uid < 0) {
        this.unknown.add(id);
        return;
      }
      this.unknown.delete(id);
      if (this.uids.size >= this.maxCachedUsers) this.uids.delete(this.uids.keys().next().value as string);
      this.uids.set(id, uid);
    });
  }

  /** (Re)loads one segment's whole bitmap. */
  private async load(segmentId: string): Promise<void> {
    const chunks: Uint8Array[] = [];
    let version = 0;
    let everyone = false;
    for await (const part of this.client.getSegmentBitmap({ segmentId })) {
      chunks.push(part.bitmap);
      version = Number(part.version);
      everyone = part.everyone;
    }
    const bytes = Buffer.concat(chunks);
    const bitmap = everyone || bytes.byteLength === 0 ? new RoaringBitmap32() : RoaringBitmap32.deserialize(bytes, true);
    this.held.set(segmentId, { bitmap, version, everyone });
  }

  /** Follows the feed until closed: reconnects with backoff, reloading segments whose history is gone. */
  private async follow(): Promise<void> {
    let backoff = 100;
    while (!this.closed()) {
      try {
        await this.watchOnce(() => {
          backoff = 100;
        });
      } catch (error: unknown) {
        if (this.closed()) return;
        this.lastError = error instanceof Error ? error.message : String(error);
        if (this.state === "live") {
          this.state = "lagging";
          this.brokenAt = Date.now();
        }
        if ((error as Partial<ServiceError>).code === grpcStatus.FAILED_PRECONDITION) await this.reloadAll().catch(() => undefined);
        await new Promise((resolve) => setTimeout(resolve, backoff * (0.5 + Math.random())));
        backoff = Math.min(backoff * 2, this.maxBackoffMs);
      }
    }
  }

  private async reloadAll(): Promise<void> {
    for (const id of this.segmentIds) if (!this.held.get(id)?.everyone) await this.load(id);
  }

  /** One WatchMembership stream from the versions held; returns when it ends. */
  private async watchOnce(onOpen: () => void): Promise<void> {
    const watched = this.segmentIds.filter((id) => !this.held.get(id)?.everyone);
    if (watched.length === 0) return new Promise(() => undefined);
    const fromVersions: Record<string, bigint> = {};
    for (const id of watched) fromVersions[id] = BigInt(this.held.get(id)?.version ?? 0);
    this.watch = new AbortController();
    const stream = this.client.watchMembership(
      { segmentIds: watched, fromVersions, deltaFormat: DeltaFormat.ROARING },
      { signal: this.watch.signal },
    );
    let opened = false;
    for await (const change of stream) {
      if (!opened) {
        opened = true;
        onOpen();
      }
      await this.apply(change);
      if (this.state === "lagging") this.state = "live";
    }
    throw new Error("the change feed ended");
  }

  /** Applies one version whole; a gap or a size mismatch reloads the segment instead. */
  private async apply(change: Change): Promise<void> {
    const held = this.held.get(change.segmentId);
    const version = Number(change.version);
    if (held === undefined || version <= held.version) return;
    const entered = change.enteredRoaring.byteLength === 0 ? undefined : RoaringBitmap32.deserialize(change.enteredRoaring, true);
    // A user cached as unknown may be among those entering: look them up again first.
    if (entered !== undefined && this.unknown.size > 0) await this.resolve([...this.unknown]);
    if (version !== held.version + 1) {
      await this.load(change.segmentId);
      return;
    }
    const left = change.leftRoaring.byteLength === 0 ? undefined : RoaringBitmap32.deserialize(change.leftRoaring, true);
    if (entered !== undefined) held.bitmap.orInPlace(entered);
    if (left !== undefined) held.bitmap.andNotInPlace(left);
    held.version = version;
    if (held.bitmap.size !== Number(change.memberCount)) await this.load(change.segmentId);
    const applied = {
      segmentId: change.segmentId,
      version,
      committedAt: change.time === undefined ? undefined : timestampDate(change.time),
      appliedAt: new Date(),
    };
    for (const listener of this.listeners) listener(applied);
  }
}
