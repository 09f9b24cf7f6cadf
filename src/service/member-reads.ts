/**
 * Reading members out: ListMembers pages a segment's current members; DiffMembership pages the
 * users that entered and left between two versions. Ids come out in uid order, which is stable.
 */
import { FailedPreconditionError, InvalidArgumentError } from "../errors.js";
import { RoaringBitmap32 } from "../index/roaring.js";
import type { SegmentStore } from "../store/segment-store.js";
import type { SegmentState } from "./segment-state.js";
import { membershipAt } from "./versions.js";

const PAGE_DEFAULT = 1_000;
const PAGE_MAX = 10_000;

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

  /** Current members after the token's position, in uid order (EVERYONE: every known user). */
  listMembers(id: string, pageSize: number, pageToken: string): MembersPage {
    const segment = this.state.require(id);
    const size = pageSizeOf(pageSize);
    const after = readToken(pageToken, id, "ListMembers").after;
    const { directory } = this.state;
    const uids: number[] = [];
    if (segment.type === "EVERYONE") {
      for (let uid = after + 1; uid < directory.uidBound && uids.length <= size; uid++) if (directory.has(uid)) uids.push(uid);
    } else {
      const bitmap = this.state.bitmaps.get(id);
      uids.push(...page(bitmap, after < 0 ? 0 : bitmap.rank(after), size + 1));
    }
    const shown = uids.slice(0, size);
    const last = shown[shown.length - 1];
    return {
      userIds: shown.map((uid) => directory.externalId(uid) ?? ""),
      nextPageToken: uids.length > size && last !== undefined ? token({ id, after: last }) : "",
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
    const offset = readToken(pageToken, id, "DiffMembership", [fromVersion, to]).after;
    const current = this.state.bitmaps.get(id);
    const before = await membershipAt(this.store, segment, current, fromVersion, "from_version");
    const after = await membershipAt(this.store, segment, current, to, "to_version");
    const entered = RoaringBitmap32.andNot(after, before);
    const left = RoaringBitmap32.andNot(before, after);
    // Offsets run over entered, then left; this page takes `size` of them from `offset`.
    const start = Math.max(0, offset);
    const fromEntered = page(entered, start, size);
    const fromLeft = page(left, Math.max(0, start - entered.size), size - fromEntered.length);
    const end = start + fromEntered.length + fromLeft.length;
    const name = (uid: number) => this.state.directory.externalId(uid) ?? "";
    return {
      enteredCount: entered.size,
      leftCount: left.size,
      entered: fromEntered.map(name),
      left: fromLeft.map(name),
      nextPageToken: end < entered.size + left.size ? token({ id, after: end, versions: [fromVersion, to] }) : "",
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

interface Token {
  id: string;
  /** ListMembers: the last uid returned; DiffMembership: the next offset. */
  after: number;
  versions?: [number, number];
}

function token(t: Token): string {
  return Buffer.from(JSON.stringify(t)).toString("base64url");
}

function readToken(raw: string, id: string, method: string, versions?: [number, number]): Token {
  if (raw === "") return { id, after: method === "ListMembers" ? -1 : 0 };
  let parsed: Partial<Token> | undefined;
  try {
    parsed = JSON.parse(Buffer.from(raw, "base64url").toString("utf8")) as Partial<Token>;
  } catch {
    parsed = undefined;
  }
  if (typeof parsed?.after !== "number" || parsed.id !== id || JSON.stringify(parsed.versions) !== JSON.stringify(versions)) {
    throw new InvalidArgumentError(
      "page_token",
      `is not a token ${method} returned for this segment${versions === undefined ? "" : " and these versions"}`,
    );
  }
  return { id, after: parsed.after, ...(versions === undefined ? {} : { versions }) };
}
