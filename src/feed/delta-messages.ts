/**
 * One version's delta as WatchMembership messages: external ids in messages of at most 10,000,
 * or the portable Roaring bytes of uids in one message. Large deltas are named a slice at a time
 * with a turn of the event loop between messages, so membership answers never wait for them.
 */
import { ResourceExhaustedError } from "../errors.js";
import { decodeBitmap } from "../index/membership.js";
import type { RoaringBitmap32 } from "../index/roaring.js";
import type { UserDirectory } from "../index/user-directory.js";
import type { LoggedChange } from "./change-log.js";

/** Most user ids (entered and left together) in one message. */
export const MAX_IDS_PER_MESSAGE = 10_000;
/** Room left in a message for everything but the Roaring bytes. */
const ENVELOPE_BYTES = 4_096;

/** How deltas are sent: external ids, or portable Roaring bytes of uids. */
export type DeltaFormat = "USER_IDS" | "ROARING";

/** A version's delta: as logged, plus the bitmaps when a live change still has them. */
export type VersionDelta = LoggedChange & { added?: RoaringBitmap32; removed?: RoaringBitmap32 };

/** One message of a WatchMembership stream. */
export interface WatchMessage {
  segmentId: string;
  version: number;
  at: Date;
  memberCount: number;
  entered: string[];
  left: string[];
  enteredRoaring: Uint8Array;
  leftRoaring: Uint8Array;
  /** The last message of its version. */
  complete: boolean;
}

/** What encoding needs: the directory for external ids. */
export interface DeltaEncoderDeps {
  directory: UserDirectory;
  maxMessageBytes: number;
}

/** Sends one version's delta in `format`, with backpressure; resolves once its last message is sent. */
export async function sendDelta(
  deps: DeltaEncoderDeps,
  format: DeltaFormat,
  delta: VersionDelta,
  send: (message: WatchMessage) => Promise<void>,
): Promise<void> {
  const base = { segmentId: delta.segmentId, version: delta.version, at: delta.at, memberCount: delta.memberCount };
  const none = new Uint8Array(0);
  if (format === "ROARING") {
    checkFits(deps.maxMessageBytes, delta);
    await send({ ...base, entered: [], left: [], enteredRoaring: delta.addedBytes, leftRoaring: delta.removedBytes, complete: true });
    return;
  }
  const added = delta.added ?? decodeBitmap(delta.addedBytes);
  const removed = delta.removed ?? decodeBitmap(delta.removedBytes);
  let a = 0;
  let r = 0;
  for (;;) {
    const takeAdded = Math.min(MAX_IDS_PER_MESSAGE, added.size - a);
    const takeRemoved = Math.min(MAX_IDS_PER_MESSAGE - takeAdded, removed.size - r);
    const entered = externalIds(deps, slice(added, a, takeAdded));
    const left = externalIds(deps, slice(removed, r, takeRemoved));
    a += takeAdded;
    r += takeRemoved;
    const complete = a === added.size && r === removed.size;
    await send({ ...base, entered, left, enteredRoaring: none, leftRoaring: none, complete });
    if (complete) return;
    // Naming 10,000 ids takes a few milliseconds: let other calls run between messages.
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** A version too large for one message cannot be sent as Roaring bytes: the replica must reload instead. */
function checkFits(maxMessageBytes: number, delta: VersionDelta): void {
  const bytes = delta.addedBytes.byteLength + delta.removedBytes.byteLength;
  if (bytes + ENVELOPE_BYTES <= maxMessageBytes) return;
  throw new ResourceExhaustedError(
    "MAX_MESSAGE_BYTES",
    `version ${delta.version} of segment ${delta.segmentId} is ${bytes} bytes of Roaring deltas, over the message limit of ${maxMessageBytes} bytes; load the segment with GetSegmentBitmap and watch from its version`,
  );
}

function slice(bitmap: RoaringBitmap32, offset: number, count: number): Uint32Array {
  return count === 0 ? new Uint32Array(0) : bitmap.rangeUint32Array(new Uint32Array(count), offset, count);
}

/**
 * The external ids of `uids`. A change's new users enter the directory before the change is
 * published, and the directory never forgets a user, so every uid of the log is there.
 */
function externalIds({ directory }: DeltaEncoderDeps, uids: Uint32Array): string[] {
  const ids = new Array<string>(uids.length);
  for (let i = 0; i < uids.length; i++) {
    const id = directory.externalId(uids[i] as number);
    if (id === undefined) throw new Error(`uid ${uids[i]} is in the change log but not in the user directory`);
    ids[i] = id;
  }
  return ids;
}
