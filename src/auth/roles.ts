/**
 * Who may call what: the role each method needs, as one table. The gRPC edge reads it for every
 * call and the README prints it; a test walks every method of every service against it.
 */
import { AccessService } from "../gen/segments/v1/access_service_pb.js";
import { MembershipService } from "../gen/segments/v1/membership_service_pb.js";
import { SegmentService } from "../gen/segments/v1/segment_service_pb.js";
import type { Role } from "../model.js";

export type { Role };

/** Roles from least to most allowed. */
export const ROLES: readonly Role[] = ["reader", "writer", "admin"];

/** Whether `held` allows what `needed` allows. */
export function allows(held: Role, needed: Role): boolean {
  return ROLES.indexOf(held) >= ROLES.indexOf(needed);
}

const segments = SegmentService.typeName;
const membership = MembershipService.typeName;
const access = AccessService.typeName;

/**
 * The role each method needs, by "package.Service/Method". Reads of memberships and segments are
 * `reader`; shaping segments and their members is `writer`; what goes live, what is destroyed or
 * rewound, free-form SQL and the tokens themselves are `admin`. A writer's segment query only runs
 * by EvaluateSegment, checked like any query, and a segment only targets once an admin activates it.
 */
export const METHOD_ROLES: Readonly<Record<string, Role>> = {
  [`${membership}/CheckMembership`]: "reader",
  [`${membership}/BatchCheckMembership`]: "reader",
  [`${membership}/ListUserSegments`]: "reader",
  [`${membership}/CountAudience`]: "reader",
  [`${membership}/StreamAudience`]: "reader",
  [`${membership}/ValidateTargeting`]: "reader",
  [`${membership}/WatchMembership`]: "reader",
  [`${membership}/GetSegmentBitmap`]: "reader",
  [`${membership}/ResolveUserIds`]: "reader",
  [`${segments}/GetSegment`]: "reader",
  [`${segments}/ListSegments`]: "reader",
  [`${segments}/ListMembers`]: "reader",
  [`${segments}/DiffMembership`]: "reader",
  [`${segments}/ListEvaluations`]: "reader",
  [`${segments}/ListSegmentHistory`]: "reader",
  [`${segments}/CreateSegment`]: "writer",
  [`${segments}/UpdateSegment`]: "writer",
  [`${segments}/AddMembers`]: "writer",
  [`${segments}/RemoveMembers`]: "writer",
  [`${segments}/ImportMembers`]: "writer",
  [`${segments}/SubtractSegment`]: "writer",
  [`${segments}/EvaluateSegment`]: "writer",
  [`${segments}/ActivateSegment`]: "admin",
  [`${segments}/PauseSegment`]: "admin",
  [`${segments}/ResumeSegment`]: "admin",
  [`${segments}/ArchiveSegment`]: "admin",
  [`${segments}/RestoreSegment`]: "admin",
  [`${segments}/DeleteSegment`]: "admin",
  [`${segments}/RollbackSegment`]: "admin",
  [`${segments}/PreviewQuery`]: "admin",
  [`${segments}/PopulateFromQuery`]: "admin",
  [`${segments}/LoadEvents`]: "admin",
  [`${access}/CreateApiToken`]: "admin",
  [`${access}/ListApiTokens`]: "admin",
  [`${access}/RevokeApiToken`]: "admin",
  [`${access}/WhoAmI`]: "reader",
};

/** Services any caller may use without a token: health checks and reflection (schema only, no data). */
export const OPEN_SERVICES: readonly string[] = [
  "grpc.health.v1.Health",
  "grpc.reflection.v1.ServerReflection",
  "grpc.reflection.v1alpha.ServerReflection",
];

/** The role `method` ("package.Service/Method") needs; a method missing from the table needs admin. */
export function requiredRole(method: string): Role {
  return METHOD_ROLES[method] ?? "admin";
}
