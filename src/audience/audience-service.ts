/**
 * Audiences for campaign senders: users in any include segment and in no exclude segment.
 * CountAudience answers from cardinalities, building at most the include union; StreamAudience
 * computes the audience once into a bitmap of its own — segments' bitmaps are replaced, never
 * mutated, so the stream reads one consistent snapshot however long it takes — and sends external
 * ids in uid order, one batch per send, each with a resume token.
 */
import { createHash } from "node:crypto";
import { FailedPreconditionError, InvalidArgumentError } from "../errors.js";
import { RoaringBitmap32 } from "../index/roaring.js";
import type { Segment } from "../model.js";
import { isStale } from "../schedule/staleness.js";
import type { SegmentState } from "../service/segment-state.js";
import { checkSegmentList, USER_ID_MAX_BYTES as MAX_ID_BYTES } from "../service/validation.js";
import { membershipAt } from "../service/versions.js";
import type { SegmentStore } from "../store/segment-store.js";
import { UserIdChunk } from "../store/user-id-chunk.js";
import { type ResumePoint, readResumeToken, resumeToken } from "./resume-token.js";

/** The version of one segment an answer was computed from. */
export interface SegmentVersionRead {
  segmentId: string;
  version: number;
  versionAt: Date | null;
  stale: boolean;
}

/** One batch of a streamed audience. */
export interface AudienceBatch {
  /** The ids as UTF-8, straight from the directory (no string per id); valid only until `send` settles. */
  userIds: UserIdChunk;
  resumeToken: string;
  /** First batch only: the snapshot read, its size, and for a resumed stream whether it is the original snapshot. */
  first?: { asOf: SegmentVersionRead[]; totalCount: number; snapshotKept: boolean | undefined };
}

/** What StreamAudience asks for. */
export interface AudienceStreamRequest {
  include: readonly string[];
  exclude: readonly string[];
  batchSize: number;
  resumeToken: string;
}

export const DEFAULT_BATCH = 10_000;
export const MAX_BATCH = 100_000;

/** The segments of a request: distinct, include first, each read once; a segment in both lists is excluded. */
interface Operands {
  include: Segment[];
  exclude: Segment[];
  /** Every distinct segment, include first, in request order (as_of). */
  all: Segment[];
}

/** Dependencies, built by the composition root. */
export interface AudienceServiceDeps {
  state: SegmentState;
  store: SegmentStore;
  /** Milliseconds since the epoch, for the stale flags. */
  now: () => number;
}

/** CountAudience and StreamAudience. */
export class AudienceService {
  constructor(private readonly deps: AudienceServiceDeps) {}

  /** |∪ include − ∪ exclude|, with the version of every segment read. */
  count(include: readonly string[], exclude: readonly string[]): { count: number; asOf: SegmentVersionRead[] } {
    const ops = this.operands(include, exclude);
    return { count: this.cardinality(ops), asOf: this.asOf(ops.all) };
  }

  /**
   * Streams the audience in batches through `send`, which resolves when the reader can take more
   * (backpressure) and rejects when the call ends. A resume token continues after the last id it
   * covered, from the same snapshot when history can still rebuild it.
   */
  async stream(request: AudienceStreamRequest, send: (batch: AudienceBatch) => Promise<void>): Promise<void> {
    if (request.batchSize < 0) throw new InvalidArgumentError("batch_size", "must not be negative");
    const batchSize = request.batchSize === 0 ? DEFAULT_BATCH : Math.min(request.batchSize, MAX_BATCH);
    const ops = this.operands(request.include, request.exclude);
    const lists = listsDigest(request.include, request.exclude);
    const { state } = this.deps;
    let point: ResumePoint = { lists, versions: ops.all.map((s) => s.version), everyoneBound: state.directory.uidBound, after: -1 };
    let snapshotKept: boolean | undefined;
    if (request.resumeToken !== "") {
      point = readResumeToken(request.resumeToken, state.pageTokenSecret, lists, ops.all.length);
    }
    let audience: RoaringBitmap32;
    try {
      audience = await this.snapshot(ops, point);
      if (request.resumeToken !== "") snapshotKept = true;
    } catch (error: unknown) {
      if (!(error instanceof FailedPreconditionError)) throw error;
      // History no longer rebuilds that snapshot: continue from the current membership instead.
      point = { ...point, versions: ops.all.map((s) => s.version), everyoneBound: state.directory.uidBound };
      audience = await this.snapshot(ops, point);
      snapshotKept = false;
    }
    await this.send(audience, point, batchSize, { asOf: this.asOf(ops.all, point.versions), snapshotKept }, send);
  }

  private async send(
    audience: RoaringBitmap32,
    point: ResumePoint,
    batchSize: number,
    first: { asOf: SegmentVersionRead[]; snapshotKept: boolean | undefined },
    send: (batch: AudienceBatch) => Promise<void>,
  ): Promise<void> {
    const { directory, pageTokenSecret } = this.deps.state;
    const total = audience.size;
    let offset = point.after < 0 ? 0 : audience.rank(point.after);
    const buffer = new Uint32Array(batchSize);
    const ends = new Uint32Array(batchSize);
    let bytes = new Uint8Array(Math.min(batchSize, DEFAULT_BATCH) * 32);
    let firstBatch: AudienceBatch["first"] = { ...first, totalCount: total };
    do {
      const uids = audience.rangeUint32Array(buffer, offset, batchSize);
      let fill = 0;
      for (let i = 0; i < uids.length; i++) {
        if (fill + MAX_ID_BYTES > bytes.length) {
          const grown = new Uint8Array(bytes.length * 2);
          grown.set(bytes.subarray(0, fill));
          bytes = grown;
        }
        // A uid with no id (never the case for a member) is sent as "", as it always was.
        fill = directory.copyId(uids[i] as number, bytes, fill);
        ends[i] = fill;
      }
      const userIds = new UserIdChunk(bytes.subarray(0, fill), ends.subarray(0, uids.length));
      offset += uids.length;
      const after = uids.length === 0 ? point.after : (uids[uids.length - 1] as number);
      const token = resumeToken({ ...point, after }, pageTokenSecret);
      await send(firstBatch === undefined ? { userIds, resumeToken: token } : { userIds, resumeToken: token, first: firstBatch });
      firstBatch = undefined;
    } while (offset < total);
  }

  /** The request's segments, checked: 1–100 include and 0–100 exclude ids, each ACTIVE or PAUSED. */
  private operands(include: readonly string[], exclude: readonly string[]): Operands {
    checkSegmentList(include, "include_segment_ids", 1);
    checkSegmentList(exclude, "exclude_segment_ids", 0);
    const { state } = this.deps;
    const excluded = new Map(exclude.map((id, i) => [id, state.servable(id, `exclude_segment_ids[${i}]`)]));
    const included = new Map<string, Segment>();
    include.forEach((id, i) => {
      const segment = state.servable(id, `include_segment_ids[${i}]`);
      if (!excluded.has(id)) included.set(id, segment);
    });
    const all = new Map<string, Segment>();
    for (const id of [...include, ...exclude]) {
      const segment = included.get(id) ?? excluded.get(id);
      if (segment !== undefined && !all.has(id)) all.set(id, segment);
    }
    return { include: [...included.values()], exclude: [...excluded.values()], all: [...all.values()] };
  }

  /** The audience's size from cardinalities: no bitmap is built for one include segment. */
  private cardinality({ include, exclude }: Operands): number {
    const { state } = this.deps;
    if (include.length === 0 || exclude.some((s) => s.type === "EVERYONE")) return 0;
    const excluded = union(exclude.map((s) => state.bitmaps.get(s.id)));
    if (include.some((s) => s.type === "EVERYONE")) return state.directory.countExcept(excluded);
    const only = include.length === 1 ? state.bitmaps.get((include[0] as Segment).id) : undefined;
    const included = only ?? RoaringBitmap32.orMany(include.map((s) => state.bitmaps.get(s.id)));
    return excluded.size === 0 ? included.size : included.andNotCardinality(excluded);
  }

  /** The audience as a bitmap of its own, at the versions and directory bound of `point`. */
  private async snapshot(ops: Operands, point: ResumePoint): Promise<RoaringBitmap32> {
    const members = await Promise.all(ops.all.map((segment, k) => this.membersAt(segment, point.versions[k] ?? 0, point.everyoneBound)));
    const byId = new Map(ops.all.map((segment, k) => [segment.id, members[k] as RoaringBitmap32]));
    const pick = (list: Segment[]) => list.map((s) => byId.get(s.id) ?? new RoaringBitmap32());
    // Bitmaps are replaced, never mutated: one include segment's bitmap is a snapshot as it is.
    const included = union(pick(ops.include));
    return ops.exclude.length === 0 ? included : RoaringBitmap32.andNot(included, union(pick(ops.exclude)));
  }

  /** A segment's members at `version`; EVERYONE: every user with a uid below `everyoneBound`. */
  private async membersAt(segment: Segment, version: number, everyoneBound: number): Promise<RoaringBitmap32> {
    const { state, store } = this.deps;
    if (segment.type === "EVERYONE") {
      const all = state.directory.allUids();
      all.removeRange(everyoneBound, 2 ** 32);
      return all;
    }
    if (version === segment.version) return state.bitmaps.get(segment.id);
    return membershipAt(store, segment, state.bitmaps.get(segment.id), version, "resume_token");
  }

  private asOf(segments: Segment[], versions?: number[]): SegmentVersionRead[] {
    const now = this.deps.now();
    return segments.map((s, k) => {
      const version = versions?.[k] ?? s.version;
      const versionAt = version === s.version ? s.versionAt : null;
      return { segmentId: s.id, version, versionAt, stale: isStale(s, now) };
    });
  }
}

/** The union of some bitmaps without copying when there is at most one. */
function union(bitmaps: RoaringBitmap32[]): RoaringBitmap32 {
  if (bitmaps.length === 0) return new RoaringBitmap32();
  if (bitmaps.length === 1) return bitmaps[0] as RoaringBitmap32;
  return RoaringBitmap32.orMany(bitmaps);
}

/** A short digest naming the include and exclude lists, so a token only resumes the same audience. */
function listsDigest(include: readonly string[], exclude: readonly string[]): string {
  return createHash("sha256")
    .update(JSON.stringify([include, exclude]))
    .digest("base64url")
    .slice(0, 22);
}
