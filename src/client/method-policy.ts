/**
 * Per method: which default deadline applies (its kind) and whether UNAVAILABLE may be retried
 * (idempotent). A method is idempotent here when applying it twice leaves the same state as once
 * and the second application succeeds too, so an attempt that failed after the server applied it
 * (UNAVAILABLE can come after a COMMIT whose answer was lost) is safe to send again. The table is
 * checked against the generated services: a new method is a compile error until it is classified.
 */
import type { DescMethod } from "@bufbuild/protobuf";
import { AccessService } from "../gen/segments/v1/access_service_pb.js";
import { MembershipService } from "../gen/segments/v1/membership_service_pb.js";
import { SegmentService } from "../gen/segments/v1/segment_service_pb.js";

/**
 * Which default deadline a call gets: `membership` for the hot path's unary calls, `admin` for
 * SegmentService's unary calls, `query` for those that run an analytics query, `stream` for
 * server and client streams.
 */
export type CallKind = "membership" | "admin" | "query" | "stream";

/** Default deadline of each kind, in milliseconds from the call's start; null means none. */
export type Deadlines = Record<CallKind, number | null>;

export const DEFAULT_DEADLINES: Readonly<Deadlines> = { membership: 2_000, admin: 30_000, query: 600_000, stream: null };

/** How the client treats one method. */
export interface MethodPolicy {
  kind: CallKind;
  /** Whether UNAVAILABLE is retried (server streams: only before their first message). */
  idempotent: boolean;
}

const idempotent = (kind: CallKind): MethodPolicy => ({ kind, idempotent: true });
const once = (kind: CallKind): MethodPolicy => ({ kind, idempotent: false });

const SEGMENT_SERVICE = {
  // A second create makes a second segment or fails ALREADY_EXISTS.
  createSegment: once("admin"),
  getSegment: idempotent("admin"),
  listSegments: idempotent("admin"),
  // Sets the named fields to the given values: the same state however often it is applied.
  updateSegment: idempotent("admin"),
  // A second delete is NOT_FOUND; a second transition is FAILED_PRECONDITION (already there).
  deleteSegment: once("admin"),
  activateSegment: once("admin"),
  pauseSegment: once("admin"),
  resumeSegment: once("admin"),
  archiveSegment: once("admin"),
  restoreSegment: once("admin"),
  // Set semantics: present members are counted unchanged, absent ones skipped; no new version.
  addMembers: idempotent("admin"),
  removeMembers: idempotent("admin"),
  // A client stream: the request cannot be replayed.
  importMembers: once("stream"),
  listMembers: idempotent("admin"),
  // Each run reads the analytics source at a new instant, so a second run may differ; and runs are long.
  populateFromQuery: once("query"),
  // A := A − B, and (A − B) − B = A − B.
  subtractSegment: idempotent("admin"),
  evaluateSegment: once("query"),
  // Writes nothing.
  previewQuery: idempotent("query"),
  listEvaluations: idempotent("admin"),
  diffMembership: idempotent("admin"),
  // Membership := that of a given version; a second rollback to it changes nothing.
  rollbackSegment: idempotent("admin"),
  listSegmentHistory: idempotent("admin"),
  // A client stream, and events have no key: a second load stores them twice.
  loadEvents: once("stream"),
} satisfies Record<keyof (typeof SegmentService)["method"], MethodPolicy>;

const MEMBERSHIP_SERVICE = {
  checkMembership: idempotent("membership"),
  batchCheckMembership: idempotent("membership"),
  listUserSegments: idempotent("membership"),
  countAudience: idempotent("membership"),
  streamAudience: idempotent("stream"),
  validateTargeting: idempotent("membership"),
  watchMembership: idempotent("stream"),
  getSegmentBitmap: idempotent("stream"),
  resolveUserIds: idempotent("membership"),
} satisfies Record<keyof (typeof MembershipService)["method"], MethodPolicy>;

const ACCESS_SERVICE = {
  // A second create makes a second token.
  createApiToken: once("admin"),
  listApiTokens: idempotent("admin"),
  // A revoked token stays revoked; revoking it again returns it unchanged.
  revokeApiToken: idempotent("admin"),
  whoAmI: idempotent("admin"),
} satisfies Record<keyof (typeof AccessService)["method"], MethodPolicy>;

const POLICIES: ReadonlyMap<string, MethodPolicy> = new Map([
  ...Object.entries(SEGMENT_SERVICE).map(([name, policy]) => [`${SegmentService.typeName}/${name}`, policy] as const),
  ...Object.entries(MEMBERSHIP_SERVICE).map(([name, policy]) => [`${MembershipService.typeName}/${name}`, policy] as const),
  ...Object.entries(ACCESS_SERVICE).map(([name, policy]) => [`${AccessService.typeName}/${name}`, policy] as const),
]);

/** The policy of `method`; methods of other services are non-idempotent with no default deadline. */
export function methodPolicy(method: DescMethod): MethodPolicy {
  return POLICIES.get(`${method.parent.typeName}/${method.localName}`) ?? once("stream");
}
