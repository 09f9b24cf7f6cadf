/**
 * Membership at any retained version: the newest snapshot at or before it, plus the change log
 * replayed up to it. Start-up uses the same replay for the current version.
 */
import { FailedPreconditionError, InvalidArgumentError } from "../errors.js";
import { applyDelta, decodeBitmap } from "../index/membership.js";
import { RoaringBitmap32 } from "../index/roaring.js";
import type { Segment } from "../model.js";
import type { Queryable } from "../store/database.js";
import type { SegmentStore } from "../store/segment-store.js";

const REPLAY_PAGE = 1_000;

/** Replays the log from the newest snapshot at or before `version`; `counted` sees each replayed change's size. */
export async function replayTo(
  store: SegmentStore,
  segmentId: string,
  version: number,
  q?: Queryable,
  counted?: (bytes: number) => void,
): Promise<{ members: RoaringBitmap32; version: number }> {
  const snapshot = await store.latestSnapshot(segmentId, version, q);
  let members = snapshot === undefined ? new RoaringBitmap32() : decodeBitmap(snapshot.members);
  let at = snapshot?.version ?? 0;
  for (;;) {
    const changes = await store.loadChanges(segmentId, at, REPLAY_PAGE, version, q);
    for (const change of changes) {
      if (change.version !== at + 1) throw new Error(`segment ${segmentId}: change log jumps from version ${at} to ${change.version}`);
      members = applyDelta(members, { added: decodeBitmap(change.added), removed: decodeBitmap(change.removed) });
      counted?.(change.added.byteLength + change.removed.byteLength);
      at = change.version;
    }
    if (changes.length < REPLAY_PAGE) break;
  }
  return { members, version: at };
}

/**
 * The membership of `segment` at `version` (0 = the empty membership at creation); the current
 * version comes from memory. Versions above the current one or pruned from history are refused.
 */
export async function membershipAt(
  store: SegmentStore,
  segment: Segment,
  current: RoaringBitmap32,
  version: number,
  field: string,
  q?: Queryable,
): Promise<RoaringBitmap32> {
  if (version > segment.version)
    throw new InvalidArgumentError(field, `version ${version} is newer than the current version ${segment.version}`);
  if (version === segment.version) return current;
  const oldest = await store.historyFrom(segment.id, q);
  if (version < oldest) {
    throw new FailedPreconditionError("history", `version ${version} is no longer retained; the oldest retained version is ${oldest}`);
  }
  const rebuilt = await replayTo(store, segment.id, version, q);
  if (rebuilt.version !== version) throw new Error(`segment ${segment.id}: could rebuild version ${rebuilt.version}, not ${version}`);
  return rebuilt.members;
}
