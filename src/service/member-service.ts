/**
 * Member management of STATIC segments. Every change follows the write-ahead rule: take the
 * segment's lock, commit the delta as the next version, then publish the new bitmap.
 */
import { FailedPreconditionError } from "../errors.js";
import { addDelta, applyDelta, bitmapOf, encodeBitmap, type MembershipDelta, removeDelta } from "../index/membership.js";
import type { ChangeTrigger, Segment, SegmentStatus } from "../model.js";
import type { Queryable } from "../store/database.js";
import type { SegmentStore, UserRow } from "../store/segment-store.js";
import type { KeyedMutex } from "./keyed-mutex.js";
import type { SegmentState } from "./segment-state.js";
import { checkUserIds } from "./validation.js";

/** The outcome of AddMembers / RemoveMembers. */
export interface MemberChangeResult {
  added: number;
  removed: number;
  unchanged: number;
  version: number;
  memberCount: number;
}

/** Dependencies, built by the composition root. */
export interface MemberServiceDeps {
  state: SegmentState;
  store: SegmentStore;
  clock: () => Date;
  /** Shared with SegmentService: lifecycle and member changes of one segment serialize. */
  locks: KeyedMutex;
  maxIdsPerCall: number;
}

const EDITABLE_MEMBERS: readonly SegmentStatus[] = ["DRAFT", "ACTIVE", "PAUSED"];

/** Adds and removes members of STATIC segments. */
export class MemberService {
  constructor(private readonly deps: MemberServiceDeps) {}

  /** Adds users to a STATIC segment; one call is one atomic version. */
  async addMembers(id: string, userIds: readonly string[], trigger: ChangeTrigger = "ADD"): Promise<MemberChangeResult> {
    checkUserIds(userIds, this.deps.maxIdsPerCall);
    return this.changeMembers(id, "AddMembers", trigger, async (segment, tx) => {
      const { directory, bitmaps } = this.deps.state;
      const uids: number[] = [];
      const unknown = new Set<string>();
      for (const userId of userIds) {
        const uid = directory.lookup(userId);
        if (uid === undefined) unknown.add(userId);
        else uids.push(uid);
      }
      // New users get their uid in the same transaction as the change that first names them.
      const newUsers = await this.deps.store.resolveNewUsers(tx, [...unknown]);
      for (const row of newUsers) uids.push(row.uid);
      const requested = bitmapOf(Uint32Array.from(uids));
      return { requested: requested.size, delta: addDelta(bitmaps.get(segment.id), requested), newUsers };
    });
  }

  /** Removes users from a STATIC segment; unknown users are simply not members. */
  async removeMembers(id: string, userIds: readonly string[], trigger: ChangeTrigger = "REMOVE"): Promise<MemberChangeResult> {
    checkUserIds(userIds, this.deps.maxIdsPerCall);
    return this.changeMembers(id, "RemoveMembers", trigger, async (segment) => {
      const { directory, bitmaps } = this.deps.state;
      const distinct = new Set(userIds);
      const uids: number[] = [];
      for (const userId of distinct) {
        const uid = directory.lookup(userId);
        if (uid !== undefined) uids.push(uid);
      }
      return { requested: distinct.size, delta: removeDelta(bitmaps.get(segment.id), bitmapOf(Uint32Array.from(uids))), newUsers: [] };
    });
  }

  /**
   * The shared write path: under the segment's lock, compute the delta, and when it changes
   * anything append it as the next version, then publish it. A change that changes nothing
   * writes no version. New users enter the directory only after the commit.
   */
  private async changeMembers(
    id: string,
    operation: string,
    trigger: ChangeTrigger,
    compute: (segment: Segment, tx: Queryable) => Promise<{ requested: number; delta: MembershipDelta; newUsers: UserRow[] }>,
  ): Promise<MemberChangeResult> {
    const { state, store, locks } = this.deps;
    state.require(id);
    return locks.run(id, async () => {
      const segment = state.require(id);
      checkMembersEditable(segment, operation);
      const current = state.bitmaps.get(id);
      const at = this.deps.clock();
      const outcome = await store.transaction(async (tx) => {
        const { requested, delta, newUsers } = await compute(segment, tx);
        if (delta.added.size === 0 && delta.removed.size === 0) return { requested, delta, newUsers, next: undefined };
        const next = applyDelta(current, delta);
        await store.appendChange(tx, {
          segmentId: id,
          version: segment.version + 1,
          added: encodeBitmap(delta.added),
          removed: encodeBitmap(delta.removed),
          addedCount: delta.added.size,
          removedCount: delta.removed.size,
          memberCount: next.size,
          trigger,
          at,
        });
        return { requested, delta, newUsers, next };
      });
      for (const user of outcome.newUsers) state.directory.add(user.uid, user.external_id);
      let published = segment;
      if (outcome.next !== undefined) {
        published = { ...segment, version: segment.version + 1, versionAt: at, memberCount: outcome.next.size };
        state.bitmaps.set(id, outcome.next);
        state.segments.set(id, published);
      }
      const added = outcome.delta.added.size;
      const removed = outcome.delta.removed.size;
      return {
        added,
        removed,
        unchanged: outcome.requested - added - removed,
        version: published.version,
        memberCount: published.memberCount,
      };
    });
  }
}

function checkMembersEditable(segment: Segment, operation: string): void {
  if (segment.type !== "STATIC") {
    throw new FailedPreconditionError("type", `${operation} needs a STATIC segment; this one is ${segment.type}`);
  }
  if (!EDITABLE_MEMBERS.includes(segment.status)) {
    throw new FailedPreconditionError(
      "status",
      `${operation} is not allowed: the segment is ${segment.status}; restore it first (members can change in ${EDITABLE_MEMBERS.join(", ")})`,
    );
  }
}
