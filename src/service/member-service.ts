/**
 * Member changes: add, remove, import, subtract, rollback. Every one follows the write-ahead
 * rule — take the segment's lock, commit the delta as the next version, then publish the new
 * bitmap — and one call is one version (or none, when it changes nothing).
 */
import { reserveAfterCommit, throwIfOver } from "../control/cancellation.js";
import type { KeyedMutex } from "../control/keyed-mutex.js";
import { nextSlice, sliceDue } from "../control/time-slice.js";
import { FailedPreconditionError, InvalidArgumentError, UnavailableError } from "../errors.js";
import { FirstOccurrences } from "../index/first-occurrences.js";
import { addDelta, applyDelta, bitmapOf, encodeBitmap, type MembershipDelta, removeDelta, replaceDelta } from "../index/membership.js";
import { RoaringBitmap32 } from "../index/roaring.js";
import { NOT_FOUND } from "../index/user-directory.js";
import type { ChangeTrigger, Segment, SegmentStatus, SegmentType } from "../model.js";
import type { Queryable } from "../store/database.js";
import { type SegmentStore, VersionConflictError } from "../store/segment-store.js";
import { UserIdChunk } from "../store/user-id-chunk.js";
import { ImportParser, type InvalidEntry } from "./import-parser.js";
import { catchUp, type SegmentState } from "./segment-state.js";
import { type CreatedUsers, type NewIds, PendingUsers, RequestNewIds, type UserRegistry } from "./user-registry.js";
import { checkUserIdBytes, checkUserIds } from "./validation.js";
import { membershipAt } from "./versions.js";

/** Ids as a gather takes them: strings (imports) or a chunk of UTF-8 bytes (query results). */
export type UserIds = readonly string[] | UserIdChunk;

/** Ids resolved between two looks at the clock (a power of two). */
const IDS_PER_CHECK = 256;

/** Ids gathered for one change: known ones as uids, unknown ones packed until the commit gives them uids. */
export class GatheredIds {
  readonly known = new RoaringBitmap32();
  readonly pending: PendingUsers;

  /** `directory`: the one the ids are looked up in, read now, before the first lookup. */
  constructor(directory: { readonly uidBound: number }) {
    this.pending = new PendingUsers(directory.uidBound);
  }
}

/** A gathered set resolved to uids, and how many of its ids name nobody. */
interface Resolved {
  uids: RoaringBitmap32;
  unknown: number;
}

/** The outcome of a member change. */
export interface MemberChangeResult {
  added: number;
  removed: number;
  unchanged: number;
  version: number;
  memberCount: number;
}

/** How an import combines with the current membership. */
export type ImportMode = "ADD" | "REMOVE" | "REPLACE";

/** One message of an import stream. */
export interface ImportChunk {
  userIds: UserIds;
  text: Uint8Array;
}

/** Dependencies, built by the composition root. */
export interface MemberServiceDeps {
  state: SegmentState;
  store: SegmentStore;
  /** The directory's persistence: new users get their uids through it. */
  users: UserRegistry;
  clock: () => Date;
  /** Shared with SegmentService: lifecycle and member changes of one segment serialize. */
  locks: KeyedMutex;
  maxIdsPerCall: number;
  /** How much earlier than its deadline a change must commit per user it creates, in µs (Config.commitReserveUsPerNewUser; none when unset). */
  commitReserveUsPerNewUser?: number;
}

/** What a change computed inside its transaction. */
interface Computed {
  /** Distinct ids the call named (for `unchanged`). */
  requested: number;
  delta: MembershipDelta;
  /** Users created by this change, to enter the directory after COMMIT. */
  created?: CreatedUsers;
}

/**
 * Runs inside a change's transaction, after its version is appended (if it changes anything):
 * rows that must commit with the change, such as the evaluation run that made it. Returns the
 * segment fields those rows changed, published in memory with the membership after COMMIT.
 */
export type WithinCommit = (tx: Queryable, outcome: MemberChangeResult) => Promise<Partial<Segment>>;

/** Computes a change's delta from the segment and its current bitmap, inside the transaction. */
type Compute = (segment: Segment, current: RoaringBitmap32, tx: Queryable) => Promise<Computed>;

const EDITABLE_MEMBERS: readonly SegmentStatus[] = ["DRAFT", "ACTIVE", "PAUSED"];
/** What a member operation is called, what its log rows say caused them, and where it is allowed. */
export interface ChangeKind {
  operation: string;
  trigger: ChangeTrigger;
  types: readonly SegmentType[];
  /** Statuses it may run in (default: DRAFT, ACTIVE, PAUSED). */
  statuses?: readonly SegmentStatus[];
}

const STATIC_ONLY: readonly SegmentType[] = ["STATIC"];
const KINDS = {
  add: { operation: "AddMembers", trigger: "ADD", types: STATIC_ONLY },
  remove: { operation: "RemoveMembers", trigger: "REMOVE", types: STATIC_ONLY },
  import: { operation: "ImportMembers", trigger: "IMPORT", types: STATIC_ONLY },
  subtract: { operation: "SubtractSegment", trigger: "SUBTRACT", types: STATIC_ONLY },
  rollback: { operation: "RollbackSegment", trigger: "ROLLBACK", types: ["STATIC", "DYNAMIC"] },
} satisfies Record<string, ChangeKind>;

/** The member changes that analytics queries make (used by the evaluation service). */
export const QUERY_KINDS = {
  evaluate: { operation: "EvaluateSegment", trigger: "EVALUATION", types: ["DYNAMIC"], statuses: ["DRAFT", "ACTIVE", "PAUSED"] },
  schedule: { operation: "A scheduled evaluation", trigger: "SCHEDULE", types: ["DYNAMIC"], statuses: ["ACTIVE"] },
  populate: { operation: "PopulateFromQuery", trigger: "QUERY", types: STATIC_ONLY },
} satisfies Record<string, ChangeKind>;

/** Changes the membership of segments. */
export class MemberService {
  constructor(private readonly deps: MemberServiceDeps) {}

  /** Adds users to a STATIC segment; unknown users join the directory. */
  async addMembers(id: string, userIds: UserIds, signal?: AbortSignal): Promise<MemberChangeResult> {
    this.checkIds(userIds);
    return this.change(
      id,
      KINDS.add,
      async (_segment, current, tx) => {
        const { uids, pending } = await this.resolveKnown(userIds);
        // New users get their uid in the same transaction as the change that first names them.
        const registered = await this.deps.users.register(tx, [pending]);
        const newUids = registered.uids[0] ?? new Uint32Array(0);
        const all = new Uint32Array(uids.length + newUids.length);
        all.set(uids);
        all.set(newUids, uids.length);
        const requested = bitmapOf(all);
        return { requested: requested.size, delta: addDelta(current, requested), created: registered.created };
      },
      signal,
    );
  }

  /** Removes users from a STATIC segment; unknown users are simply not members. */
  async removeMembers(id: string, userIds: UserIds, signal?: AbortSignal): Promise<MemberChangeResult> {
    this.checkIds(userIds);
    return this.change(
      id,
      KINDS.remove,
      async (_segment, current) => {
        const { uids, pending } = await this.resolveKnown(userIds);
        const requested = bitmapOf(uids);
        return { requested: requested.size + pending.size, delta: removeDelta(current, requested) };
      },
      signal,
    );
  }

  /**
   * Streams an import into one version. While the client streams, known ids collect in a bitmap
   * and unknown ones are packed in memory (deduplicated, their UTF-8 bytes plus ~15 bytes each):
   * no lock, no transaction and no connection is held, so other writes proceed. Only the final
   * commit takes the segment's lock and one transaction, which gives the unknown ids their uids.
   * Nothing is visible before it; nothing is applied if the stream fails or is cancelled.
   */
  async importMembers(
    id: string,
    mode: ImportMode,
    chunks: AsyncIterable<ImportChunk>,
    signal?: AbortSignal,
  ): Promise<MemberChangeResult & { invalidCount: number; invalid: InvalidEntry[] }> {
    const parser = new ImportParser();
    const result = await this.applyIdSet(id, KINDS.import, mode, signal, async (gather) => {
      for await (const chunk of chunks) {
        throwIfOver(signal);
        if (chunk.userIds.length > this.deps.maxIdsPerCall) {
          throw new InvalidArgumentError(
            "user_ids",
            `${chunk.userIds.length} ids in one message is over the limit of ${this.deps.maxIdsPerCall}`,
          );
        }
        for (const batch of parser.push(chunk.userIds, chunk.text)) await gather(batch);
      }
      await gather(parser.finish());
    });
    return { ...result, invalidCount: parser.invalidCount, invalid: parser.invalid };
  }

  /**
   * Applies a set of ids, gathered by `feed` outside any transaction, as one version: ADD or
   * REMOVE them, or REPLACE the membership with them. Imports and query results both take this
   * path, so neither holds a lock or a connection while its ids arrive.
   */
  async applyIdSet(
    id: string,
    kind: ChangeKind,
    mode: ImportMode,
    signal: AbortSignal | undefined,
    feed: (gather: (ids: UserIds) => Promise<void>) => Promise<void>,
    withinCommit?: WithinCommit,
  ): Promise<MemberChangeResult> {
    checkMembersEditable(this.deps.state.require(id), kind);
    const set = new GatheredIds(this.deps.state.directory);
    await feed((ids) => this.gather(set, ids));
    return this.change(
      id,
      kind,
      async (_segment, current, tx) => {
        // Removing creates no users; unknown ids only count (once each) as unchanged.
        const { resolved, created } = await this.resolveGathered(tx, [set], mode !== "REMOVE");
        const { uids, unknown } = resolved[0] as Resolved;
        const delta: MembershipDelta =
          mode === "ADD" ? addDelta(current, uids) : mode === "REMOVE" ? removeDelta(current, uids) : replaceDelta(current, uids);
        // REMOVE counts unknown ids as unchanged; REPLACE's removals are members it did not name.
        const named = uids.size + unknown + (mode === "REPLACE" ? delta.removed.size : 0);
        return { requested: named, delta, created };
      },
      signal,
      withinCommit,
    );
  }

  /**
   * Applies the combination of several gathered sets as one version: inside the final
   * transaction each set is resolved to uids (creating users for staged ids), `target` combines
   * them (with other segments' members, say), and the result is added, removed or made the
   * membership.
   */
  async applyResolvedSets(
    id: string,
    kind: ChangeKind,
    mode: ImportMode,
    sets: readonly GatheredIds[],
    target: (resolved: RoaringBitmap32[]) => RoaringBitmap32,
    signal: AbortSignal | undefined,
    withinCommit?: WithinCommit,
  ): Promise<MemberChangeResult> {
    checkMembersEditable(this.deps.state.require(id), kind);
    return this.change(
      id,
      kind,
      async (_segment, current, tx) => {
        const { resolved, created } = await this.resolveGathered(tx, sets, true);
        const uids = target(resolved.map((r) => r.uids));
        const delta =
          mode === "ADD" ? addDelta(current, uids) : mode === "REMOVE" ? removeDelta(current, uids) : replaceDelta(current, uids);
        return { requested: uids.size + (mode === "REPLACE" ? delta.removed.size : 0), delta, created };
      },
      signal,
      withinCommit,
    );
  }

  /**
   * Adds `ids` to `set`: known ones as uids, unknown ones to its pending users. Resolving is
   * sliced (a turn of the event loop whenever the slice is used up), so a query result or an
   * import of millions of ids never holds membership answers back for long.
   */
  async gather(set: GatheredIds, ids: UserIds): Promise<void> {
    const uids = ids instanceof UserIdChunk ? await this.resolveChunk(ids, set.pending) : await this.resolveSliced(ids, set.pending);
    set.known.addMany(uids);
  }

  /** Looks up a chunk of UTF-8 ids: returns the known uids and adds the unknown ids to `pending`, making no string. */
  private resolveChunk(chunk: UserIdChunk, pending: PendingUsers): Promise<Uint32Array> {
    const { bytes, ends } = chunk;
    const hashes = new Uint32Array(ends.length);
    return this.lookUpChunk(chunk, hashes, (i) => pending.addUtf8(bytes, i === 0 ? 0 : (ends[i - 1] ?? 0), ends[i] ?? 0, hashes[i]));
  }

  /**
   * Looks up a chunk of UTF-8 ids, sliced: returns the known uids (compacted in place as it goes)
   * and hands each unknown id's index to `unknown`, with its hash in `hashes` already.
   */
  private async lookUpChunk(chunk: UserIdChunk, hashes: Uint32Array, unknown: (i: number) => void): Promise<Uint32Array> {
    const { directory } = this.deps.state;
    const { bytes, ends } = chunk;
    const uids = new Uint32Array(ends.length);
    let known = 0;
    for (let from = 0; from < ends.length; from += IDS_PER_CHECK) {
      const to = Math.min(ends.length, from + IDS_PER_CHECK);
      directory.lookupManyUtf8(bytes, ends, from, to, uids, hashes);
      for (let i = from; i < to; i++) {
        const uid = uids[i] ?? NOT_FOUND;
        if (uid === NOT_FOUND) unknown(i);
        else uids[known++] = uid;
      }
      if (sliceDue()) await nextSlice();
    }
    return uids.subarray(0, known);
  }

  /** Looks up ids given as strings: returns the known uids and adds the unknown ids to `pending`. */
  private async resolveSliced(ids: readonly string[], pending: PendingUsers): Promise<Uint32Array> {
    const { directory } = this.deps.state;
    const uids = new Uint32Array(ids.length);
    let known = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i] as string;
      const uid = directory.lookup(id);
      if (uid === undefined) pending.add(id);
      else uids[known++] = uid;
      if ((i & (IDS_PER_CHECK - 1)) === IDS_PER_CHECK - 1 && sliceDue()) await nextSlice();
    }
    return uids.subarray(0, known);
  }

  /**
   * Inside a change's transaction: every uid each set names — creating users for pending ids when
   * `createUsers`, one uid per id across the sets — and how many pending ids name nobody.
   */
  async resolveGathered(
    tx: Queryable,
    sets: readonly GatheredIds[],
    createUsers: boolean,
  ): Promise<{ resolved: Resolved[]; created: CreatedUsers }> {
    const { users } = this.deps;
    const pendings = sets.map((set) => set.pending);
    const { uids, created } = createUsers
      ? await users.register(tx, pendings)
      : { uids: await Promise.all(pendings.map((p) => users.resolve(p))), created: [] };
    const resolved = sets.map((set, k) => {
      const found = (uids[k] ?? new Uint32Array(0)).filter((uid) => uid !== NOT_FOUND);
      const all = found.length === 0 ? set.known : RoaringBitmap32.or(set.known, bitmapOf(found));
      return { uids: all, unknown: set.pending.size - found.length };
    });
    return { resolved, created };
  }

  /** A := A − B. B may be any type (EVERYONE empties A) but not a DRAFT. */
  async subtractSegment(id: string, subtractId: string, signal?: AbortSignal): Promise<MemberChangeResult & { subtractedVersion: number }> {
    if (id === subtractId) throw new InvalidArgumentError("subtract_segment_id", "must differ from segment_id");
    const { state } = this.deps;
    state.require(subtractId, "subtract_segment_id");
    let subtractedVersion = 0;
    const result = await this.change(
      id,
      KINDS.subtract,
      async (_segment, current) => {
        const other = state.require(subtractId, "subtract_segment_id");
        if (other.status === "DRAFT") {
          throw new FailedPreconditionError(
            "status",
            `segment ${subtractId} is DRAFT; only ACTIVE, PAUSED or ARCHIVED segments can be subtracted`,
          );
        }
        subtractedVersion = other.version;
        const removing = other.type === "EVERYONE" ? current : state.bitmaps.get(subtractId);
        return { requested: 0, delta: removeDelta(current, removing) };
      },
      signal,
    );
    return { ...result, unchanged: 0, subtractedVersion };
  }

  /** Restores the membership of an earlier version as a new version. */
  async rollback(id: string, toVersion: number, signal?: AbortSignal): Promise<MemberChangeResult> {
    return this.change(
      id,
      KINDS.rollback,
      async (segment, current, tx) => {
        const target = await membershipAt(this.deps.store, segment, current, toVersion, "to_version", tx);
        return {
          requested: 0,
          delta: { added: RoaringBitmap32.andNot(target, current), removed: RoaringBitmap32.andNot(current, target) },
        };
      },
      signal,
    );
  }

  /** Refuses more ids than one call may carry, or one no user can have (the wire decoder checked a chunk's). */
  private checkIds(userIds: UserIds): void {
    if (userIds instanceof UserIdChunk) checkUserIdBytes(userIds, this.deps.maxIdsPerCall);
    else checkUserIds(userIds, this.deps.maxIdsPerCall);
  }

  /** Splits one call's ids into known uids and the distinct unknown ones, sliced as gathering is. */
  private async resolveKnown(userIds: UserIds): Promise<{ uids: Uint32Array; pending: NewIds }> {
    if (userIds instanceof UserIdChunk) return this.resolveRequest(userIds);
    const pending = new PendingUsers(this.deps.state.directory.uidBound, userIds.length);
    return { uids: await this.resolveSliced(userIds, pending), pending };
  }

  /**
   * Looks up one request's ids where they lie: its known uids, and its distinct unknown ids as
   * RequestNewIds (nothing copied; the request's bytes outlive the call's transaction).
   */
  private async resolveRequest(chunk: UserIdChunk): Promise<{ uids: Uint32Array; pending: NewIds }> {
    const since = this.deps.state.directory.uidBound;
    const hashes = new Uint32Array(chunk.length);
    const unknown = new FirstOccurrences(chunk.bytes, chunk.ends, hashes, chunk.length);
    const uids = await this.lookUpChunk(chunk, hashes, (i) => unknown.add(i));
    return { uids, pending: new RequestNewIds(since, chunk, unknown.indices, hashes) };
  }

  /**
   * The shared write path: under the segment's lock, compute the delta in a transaction and,
   * when it changes anything, append it as the next version; after COMMIT, publish the bitmap
   * and enter new users in the directory. A change that changes nothing writes no version.
   */
  private async change(
    id: string,
    kind: ChangeKind,
    compute: Compute,
    signal?: AbortSignal,
    withinCommit?: WithinCommit,
  ): Promise<MemberChangeResult> {
    const { state, store, locks } = this.deps;
    state.require(id);
    return locks.run(
      id,
      async () => {
        try {
          return await this.changeLocked(id, kind, compute, signal, withinCommit);
        } catch (error: unknown) {
          if (!(error instanceof VersionConflictError)) throw error;
          await catchUp(store, state, this.deps.users, id);
          throw new UnavailableError("the segment was changed by another writer; memory has caught up, retry the call", { cause: error });
        }
      },
      signal,
    );
  }

  /** The body of `change`, run under the segment's lock. */
  private async changeLocked(
    id: string,
    kind: ChangeKind,
    compute: Compute,
    signal: AbortSignal | undefined,
    withinCommit: WithinCommit | undefined,
  ): Promise<MemberChangeResult> {
    const { state, store } = this.deps;
    const segment = state.require(id);
    checkMembersEditable(segment, kind);
    const current = state.bitmaps.get(id);
    const { computed, next, encoded, at, result, patch } = await store.transaction(async (tx) => {
      const computed = await compute(segment, current, tx);
      const { delta } = computed;
      const newUsers = computed.created?.reduce((sum, chunk) => sum + chunk.count, 0) ?? 0;
      reserveAfterCommit(signal, (newUsers * (this.deps.commitReserveUsPerNewUser ?? 0)) / 1000);
      const at = this.deps.clock();
      const changes = delta.added.size > 0 || delta.removed.size > 0;
      const next = changes ? applyDelta(current, delta) : undefined;
      let encoded: { addedBytes: Uint8Array; removedBytes: Uint8Array } | undefined;
      if (next !== undefined) {
        const added = encodeBitmap(delta.added);
        const removed = encodeBitmap(delta.removed);
        encoded = { addedBytes: added, removedBytes: removed };
        await store.appendChange(tx, {
          segmentId: id,
          version: segment.version + 1,
          added,
          removed,
          addedCount: delta.added.size,
          removedCount: delta.removed.size,
          memberCount: next.size,
          trigger: kind.trigger,
          at,
        });
      }
      const result = outcomeOf(computed, next === undefined ? segment.version : segment.version + 1, next?.size ?? segment.memberCount);
      const patch = withinCommit === undefined ? {} : await withinCommit(tx, result);
      return { computed, next, encoded, at, result, patch };
    }, signal);
    try {
      // Users first, so whoever reads the new membership (the change feed, ListMembers) finds their ids.
      if (computed.created !== undefined) await this.deps.users.enter(computed.created);
    } finally {
      // The version is committed: memory must move on even if entering failed.
      if (next !== undefined && encoded !== undefined) {
        const published = { ...segment, ...patch, version: result.version, versionAt: at, memberCount: next.size };
        state.publishMembership(published, next, { ...computed.delta, ...encoded });
      } else if (withinCommit !== undefined) {
        state.segments.set(id, { ...segment, ...patch });
      }
    }
    return result;
  }
}

/** What a change reports: its counts, version and member count after it. */
function outcomeOf(computed: Computed, version: number, memberCount: number): MemberChangeResult {
  const added = computed.delta.added.size;
  const removed = computed.delta.removed.size;
  return { added, removed, unchanged: Math.max(0, computed.requested - added - removed), version, memberCount };
}

function checkMembersEditable(segment: Segment, { operation, types, statuses = EDITABLE_MEMBERS }: ChangeKind): void {
  if (!types.includes(segment.type)) {
    throw new FailedPreconditionError("type", `${operation} needs a ${types.join(" or ")} segment; this one is ${segment.type}`);
  }
  if (!statuses.includes(segment.status)) {
    const fix = segment.status === "ARCHIVED" ? "restore it first; " : "";
    throw new FailedPreconditionError(
      "status",
      `${operation} is not allowed: the segment is ${segment.status}; ${fix}it is allowed in ${statuses.join(", ")}`,
    );
  }
}
