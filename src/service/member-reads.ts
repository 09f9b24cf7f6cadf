/**
 * Reading members out: ListMembers pages a segment's current members; DiffMembership pages the
 * users that entered and left between two versions. Ids come out in uid order, which is stable.
 */
import { FailedPreconditionError, InvalidArgumentError } from "../errors.js";
import { RoaringBitmap32 } from "../index/roaring.js";
import type { SegmentStore } from "../store/segment-store.js";
import { signPageToken, tokenInteger, verifyPageToken } from "./page-token.js";
import type { SegmentState } from "./segment-state.js";
import { membershipAt } from "./versions.js";

const PAGE_DEFAULT = 1_000;
const PAGE_MAX = 10_000;
/** Uids an EVERYONE page looks at, at most: well above PAGE_MAX, and a few milliseconds of work. */
const EVERYONE_SCAN_MAX = 1 << 20;
/** The largest uid (uids are uint32). */
const UID_MAX = 2 ** 32 - 1;
const LIST_MEMBERS = "ListMembers";
const DIFF_MEMBERSHIP = "DiffMembership";

/** One page of ListMembers. */
export interface MembersPage {
  userIds: string[];
  nextPageToken: string;
  version: number;
}

/** One page of DiffMembership. */
export interface DiffPage {
  enteredCount: number;
  leftCount: number;
  entered: string[];
  left: string[];
  nextPageToken: string;
  toVersion: number;
}

/** Read-only member queries. */
export class MemberReads {
  constructor(
    private readonly state: SegmentState,
    private readonly store: SegmentStore,
  ) {}

  /**
   * Current members after the token's position, in uid order (EVERYONE: every known user). An
   * EVERYONE page scans at most EVERYONE_SCAN_MAX uids, so a gap in the uid sequence (rolled-back
   * inserts leave them) costs a short page rather than a blocked loop.
   */
  listMembers(id: string, pageSize: number, pageToken: string): MembersPage {
    const segment = this.state.require(id);
    const size = pageSizeOf(pageSize);
    const after = readListToken(pageToken, id, this.state.pageTokenSecret);
    const { directory } = this.state;
    const uids: number[] = [];
    let next: number | undefined;
    if (segment.type === "EVERYONE") {
      const end = Math.min(directory.uidBound, after + 1 + EVERYONE_SCAN_MAX);
      let uid = after + 1;
      for (; uid < end && uids.length <= size; uid++) if (directory.has(uid)) uids.push(uid);
      // Stopped by the scan limit with users possibly beyond: continue after the last uid looked at.
      if (uids.length <= size && uid < directory.uidBound) next = uid - 1;
    } else {
      const bitmap = this.state.bitmaps.get(id);
      uids.push(...page(bitmap, after < 0 ? 0 : bitmap.rank(after), size + 1));
    }
    const shown = uids.slice(0, size);
    const last = shown[shown.length - 1];
    if (uids.length > size && last !== undefined) next = last;
    return {
      userIds: shown.map((uid) => directory.externalId(uid) ?? ""),
      nextPageToken: next === undefined ? "" : signPageToken(LIST_MEMBERS, { id, after: next }, this.state.pageTokenSecret),
      version: segment.version,
    };
  }

  /** Users in `toVersion` but not `fromVersion` (entered), then the reverse (left). */
  async diffMembership(id: string, fromVersion: number, toVersion: number, pageSize: number, pageToken: string): Promise<DiffPage> {
    const segment = this.state.require(id);
    if (segment.type === "EVERYONE") throw new FailedPreconditionError("type", "EVERYONE segments have no membership history");
    const to = toVersion === 0 ? segment.version : toVersion;
    if (fromVersion > to) throw new InvalidArgumentError("from_version", `${fromVersion} is after to_version ${to}`);
    const size = pageSizeOf(pageSize);
    const start = readDiffToken(pageToken, id, [fromVersion, to], this.state.pageTokenSecret);
    const current = this.state.bitmaps.get(id);
    const before = await membershipAt(this.store, segment, current, fromVersion, "from_version");
    const after = await membershipAt(this.store, segment, current, to, "to_version");
    const entered = RoaringBitmap32.andNot(after, before);
    const left = RoaringBitmap32.andNot(before, after);
    // The versions are fixed by the token, so the totals are too: a valid offset lies within them.
    if (start > entered.size + left.size) throw new InvalidArgumentError("page_token", "points past the end of this diff");
    // Offsets run over entered, then left; this page takes `size` of them from `start`.
    const fromEntered = page(entered, start, size);
    const fromLeft = page(left, Math.max(0, start - entered.size), size - fromEntered.length);
    const end = start + fromEntered.length + fromLeft.length;
    const name = (uid: number) => this.state.directory.externalId(uid) ?? "";
    return {
      enteredCount: entered.size,
      leftCount: left.size,
      entered: fromEntered.map(name),
      left: fromLeft.map(name),
      nextPageToken:
        end < entered.size + left.size
          ? signPageToken(DIFF_MEMBERSHIP, { id, after: end, versions: [fromVersion, to] }, this.state.pageTokenSecret)
          : "",
      toVersion: to,
    };
  }
}

function page(bitmap: RoaringBitmap32, offset: number, limit: number): number[] {
  if (limit <= 0 || offset >= bitmap.size) return [];
  return Array.from(bitmap.rangeUint32Array(new Uint32Array(limit), offset, limit));
}

function pageSizeOf(requested: number): number {
  if (requested < 0) throw new InvalidArgumentError("page_size", "must not be negative");
  return requested === 0 ? PAGE_DEFAULT : Math.min(requested, PAGE_MAX);
}

/** The last uid a ListMembers page covered; −1 for the first page. */
function readListToken(raw: string, id: string, secret: Uint8Array): number {
  if (raw === "") return -1;
  const payload = verifyPageToken(raw, LIST_MEMBERS, secret);
  if (payload.id !== id) throw new InvalidArgumentError("page_token", `is not a token ${LIST_MEMBERS} returned for this segment`);
  return tokenInteger(payload, "after", -1, UID_MAX);
}

/** The offset a DiffMembership page starts at; 0 for the first page. */
function readDiffToken(raw: string, id: string, versions: [number, number], secret: Uint8Array): number {
  if (raw === "") return 0;
  const payload = verifyPageToken(raw, DIFF_MEMBERSHIP, secret);
  if (payload.id !== id || JSON.stringify(payload.versions) !== JSON.stringify(versions)) {
    throw new InvalidArgumentError("page_token", `is not a token ${DIFF_MEMBERSHIP} returned for this segment and these versions`);
  }
  // A diff holds at most two sets of uint32 uids.
  return tokenInteger(payload, "after", 0, 2 * UID_MAX);
}
