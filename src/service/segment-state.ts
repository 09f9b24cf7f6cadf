/**
 * Everything the service holds in memory: segment definitions, their bitmaps and the user
 * directory. Rebuilt from the store at start; afterwards changed only after a commit.
 */

import { NotFoundError } from "../errors.js";
import { applyDelta, decodeBitmap } from "../index/membership.js";
import { RoaringBitmap32 } from "../index/roaring.js";
import { SegmentBitmaps } from "../index/segment-bitmaps.js";
import { UserDirectory } from "../index/user-directory.js";
import type { Segment } from "../model.js";
import type { SegmentStore } from "../store/segment-store.js";
import { checkSegmentId } from "./validation.js";

const PAGE = 50_000;

/** The in-memory view of every segment. */
export class SegmentState {
  readonly segments = new Map<string, Segment>();
  readonly bitmaps = new SegmentBitmaps();
  readonly directory = new UserDirectory();

  /** The segment with `id`; InvalidArgumentError for a malformed id, NotFoundError for an unknown one. */
  require(id: string, field = "segment_id"): Segment {
    const segment = this.segments.get(id);
    if (segment !== undefined) return segment;
    checkSegmentId(id, field);
    throw new NotFoundError("segment", id);
  }
}

/** Rebuilds the in-memory state: directory, then each segment from its snapshot plus newer changes. */
export async function loadState(store: SegmentStore): Promise<SegmentState> {
  const state = new SegmentState();
  for (let after = -1; ; ) {
    const users = await store.loadUsers(after, PAGE);
    for (const user of users) state.directory.add(user.uid, user.external_id);
    if (users.length < PAGE) break;
    after = (users[users.length - 1] as (typeof users)[number]).uid;
  }
  for (const segment of await store.loadSegments()) {
    state.segments.set(segment.id, segment);
    state.bitmaps.set(segment.id, await loadMembership(store, segment));
  }
  return state;
}

async function loadMembership(store: SegmentStore, segment: Segment): Promise<RoaringBitmap32> {
  const snapshot = await store.latestSnapshot(segment.id);
  let members = snapshot === undefined ? new RoaringBitmap32() : decodeBitmap(snapshot.members);
  let version = snapshot?.version ?? 0;
  for (;;) {
    const changes = await store.loadChanges(segment.id, version, 1_000);
    for (const change of changes) {
      if (change.version !== version + 1)
        throw new Error(`segment ${segment.id}: change log jumps from version ${version} to ${change.version}`);
      members = applyDelta(members, { added: decodeBitmap(change.added), removed: decodeBitmap(change.removed) });
      version = change.version;
    }
    if (changes.length < 1_000) break;
  }
  // The log and the counters are written in one transaction; disagreement means corruption.
  if (version !== segment.version || members.size !== segment.memberCount) {
    throw new Error(
      `segment ${segment.id}: rebuilt version ${version} with ${members.size} members, but the row says version ${segment.version} with ${segment.memberCount}`,
    );
  }
  return members;
}
