/** MembershipService over gRPC: the hot path, kept to decode → lookup → encode. */
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { MembershipService as MembershipServiceDesc } from "../gen/segments/v1/membership_service_pb.js";
import type { MembershipService } from "../service/membership-service.js";
import type { ServiceHandlers } from "./adapter.js";
import { unimplemented } from "./unimplemented.js";

/** Handlers for every MembershipService method. */
export function membershipHandlers(service: MembershipService): ServiceHandlers<typeof MembershipServiceDesc> {
  return {
    checkMembership: (req) => ({
      results: service.checkMembership(req.userId, req.segmentIds).map((answer) => ({
        segmentId: answer.segmentId,
        member: answer.member,
        version: BigInt(answer.version),
        versionTime: timestamp(answer.versionAt),
        stale: answer.stale,
      })),
    }),
    batchCheckMembership: (req) => {
      const answer = service.batchCheckMembership(req.segmentId, req.userIds);
      return { members: answer.members, version: BigInt(answer.version), versionTime: timestamp(answer.versionAt), stale: answer.stale };
    },
    listUserSegments: unimplemented("ListUserSegments"),
    countAudience: unimplemented("CountAudience"),
    streamAudience: unimplemented("StreamAudience"),
    validateTargeting: unimplemented("ValidateTargeting"),
    watchMembership: unimplemented("WatchMembership"),
    getSegmentBitmap: unimplemented("GetSegmentBitmap"),
    resolveUserIds: unimplemented("ResolveUserIds"),
  };
}

function timestamp(date: Date | null) {
  return date === null ? undefined : timestampFromDate(date);
}
