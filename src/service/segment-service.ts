/**
 * Admin use cases: segment definitions, lifecycle and member management. Every mutation follows
 * the write-ahead rule: take the segment's lock, commit to the store, then publish in memory.
 */
import { FailedPreconditionError, InvalidArgumentError } from "../errors.js";
import { addDelta, applyDelta, bitmapOf, encodeBitmap, type MembershipDelta, removeDelta } from "../index/membership.js";
import type { ChangeTrigger, QueryDefinition, Schedule, Segment, SegmentStatus, SegmentType } from "../model.js";
import type { Queryable } from "../store/database.js";
import type { SegmentStore, UserRow } from "../store/segment-store.js";
import { newSegmentId } from "./ids.js";
import { KeyedMutex } from "./keyed-mutex.js";
import { nextStatus, type Transition } from "./lifecycle.js";
import { type ListSegmentsPage, type ListSegmentsQuery, listSegmentsPage } from "./list-segments.js";
import type { SegmentState } from "./segment-state.js";
import { checkQuery, checkSchedule, checkUserIds, validDescription, validName } from "./validation.js";

/** What CreateSegment takes. */
export interface CreateSegmentInput {
  name: string;
  description: string;
  type: SegmentType | undefined;
  query: QueryDefinition | null;
  schedule: Schedule | null;
}

/** The outcome of AddMembers / RemoveMembers. */
export interface MemberChangeResult {
  added: number;
  removed: number;
  unchanged: number;
  version: number;
  memberCount: number;
}

/** Dependencies, built by the composition root. */
export interface SegmentServiceDeps {
  state: SegmentState;
  store: SegmentStore;
  clock: () => Date;
  maxIdsPerCall: number;
}

/** Segment definitions, lifecycle and member management. */
export class SegmentService {
  private readonly locks = new KeyedMutex();

  constructor(private readonly deps: SegmentServiceDeps) {}

  /** Creates a segment in DRAFT. */
  async createSegment(input: CreateSegmentInput): Promise<Segment> {
    const name = validName(input.name);
    const description = validDescription(input.description);
    if (input.type === undefined) throw new InvalidArgumentError("type", "is required: STATIC, DYNAMIC or EVERYONE");
    checkDefinition(input.type, input.query, input.schedule);
    const now = this.deps.clock();
    const segment: Segment = {
      id: newSegmentId(now),
      name,
      description,
      type: input.type,
      status: "DRAFT",
      query: input.query,
      schedule: input.schedule,
      memberCount: 0,
      version: 0,
      versionAt: null,
      createdAt: now,
      updatedAt: now,
      archivedAt: null,
      lastEvaluation: null,
    };
    await this.deps.store.insertSegment(segment);
    this.deps.state.segments.set(segment.id, segment);
    return segment;
  }

  /** The segment with `id`. */
  getSegment(id: string): Segment {
    return this.deps.state.require(id);
  }

  /** One page of segments in creation order. */
  listSegments(query: ListSegmentsQuery): ListSegmentsPage {
    return listSegmentsPage(this.deps.state.segments.values(), query);
  }

  /** Moves a segment through its lifecycle (activate, pause, resume, archive, restore). */
  async transition(id: string, transition: Transition): Promise<Segment> {
    this.deps.state.require(id);
    return this.locks.run(id, async () => {
      const segment = this.deps.state.require(id);
      const status = nextStatus(segment.status, transition);
      if (transition === "ActivateSegment" && segment.type === "DYNAMIC" && segment.query === null) {
        throw new FailedPreconditionError(
          "query",
          "a DYNAMIC segment needs a query before it can be activated; set one with UpdateSegment",
        );
      }
      const now = this.deps.clock();
      const archivedAt = status === "ARCHIVED" ? now : status === segment.status ? segment.archivedAt : null;
      const next: Segment = { ...segment, status, updatedAt: now, archivedAt };
      await this.deps.store.updateSegment(next);
      this.deps.state.segments.set(id, next);
      return next;
    });
  }

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
   * The shared write path of member operations: under the segment's lock, compute the delta,
   * and when it changes anything append it as the next version, then publish it in memory.
   * A change that changes nothing writes no version. New users enter the directory only after
   * the commit, like everything else in memory.
   */
  private async changeMembers(
    id: string,
    operation: string,
    trigger: ChangeTrigger,
    compute: (segment: Segment, tx: Queryable) => Promise<{ requested: number; delta: MembershipDelta; newUsers: UserRow[] }>,
  ): Promise<MemberChangeResult> {
    this.deps.state.require(id);
    return this.locks.run(id, async () => {
      const segment = this.deps.state.require(id);
      checkMembersEditable(segment, operation);
      const current = this.deps.state.bitmaps.get(id);
      const at = this.deps.clock();
      const outcome = await this.deps.store.transaction(async (tx) => {
        const { requested, delta, newUsers } = await compute(segment, tx);
        if (delta.added.size === 0 && delta.removed.size === 0) return { requested, delta, newUsers, next: undefined };
        const next = applyDelta(current, delta);
        await this.deps.store.appendChange(tx, {
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
      for (const user of outcome.newUsers) this.deps.state.directory.add(user.uid, user.external_id);
      let published = segment;
      if (outcome.next !== undefined) {
        published = { ...segment, version: segment.version + 1, versionAt: at, memberCount: outcome.next.size };
        this.deps.state.bitmaps.set(id, outcome.next);
        this.deps.state.segments.set(id, published);
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

function checkDefinition(type: SegmentType, query: QueryDefinition | null, schedule: Schedule | null): void {
  if (type !== "DYNAMIC" && query !== null)
    throw new InvalidArgumentError("query", `only DYNAMIC segments have a query; this one is ${type}`);
  if (type !== "DYNAMIC" && schedule !== null)
    throw new InvalidArgumentError("schedule", `only DYNAMIC segments have a schedule; this one is ${type}`);
  if (query !== null) checkQuery(query);
  if (schedule !== null) checkSchedule(schedule);
}

const EDITABLE_MEMBERS: readonly SegmentStatus[] = ["DRAFT", "ACTIVE", "PAUSED"];

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
