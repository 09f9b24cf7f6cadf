/** SegmentService over gRPC: decode requests into domain calls and encode the answers. */
import type { SegmentService as SegmentServiceDesc } from "../gen/segments/v1/segment_service_pb.js";
import type { SegmentService } from "../service/segment-service.js";
import type { SegmentState } from "../service/segment-state.js";
import type { ServiceHandlers } from "./adapter.js";
import { queryFromProto, scheduleFromProto, segmentToProto, statusFromProto, typeFromProto } from "./convert.js";
import { unimplemented } from "./unimplemented.js";

/** Handlers for every SegmentService method. */
export function segmentHandlers(service: SegmentService, state: SegmentState): ServiceHandlers<typeof SegmentServiceDesc> {
  const wire = (segment: Parameters<typeof segmentToProto>[0]) => ({ segment: segmentToProto(segment, state.directory.size) });
  return {
    createSegment: async (req) =>
      wire(
        await service.createSegment({
          name: req.name,
          description: req.description,
          type: typeFromProto(req.type, "type"),
          query: queryFromProto(req.query),
          schedule: scheduleFromProto(req.schedule),
        }),
      ),
    getSegment: (req) => wire(service.getSegment(req.segmentId)),
    listSegments: (req) => {
      const page = service.listSegments({
        pageSize: req.pageSize,
        pageToken: req.pageToken,
        showArchived: req.showArchived,
        type: typeFromProto(req.type, "type"),
        status: statusFromProto(req.status, "status"),
        nameContains: req.nameContains,
      });
      return { segments: page.segments.map((s) => segmentToProto(s, state.directory.size)), nextPageToken: page.nextPageToken };
    },
    activateSegment: async (req) => wire(await service.transition(req.segmentId, "ActivateSegment")),
    pauseSegment: async (req) => wire(await service.transition(req.segmentId, "PauseSegment")),
    resumeSegment: async (req) => wire(await service.transition(req.segmentId, "ResumeSegment")),
    archiveSegment: async (req) => wire(await service.transition(req.segmentId, "ArchiveSegment")),
    restoreSegment: async (req) => wire(await service.transition(req.segmentId, "RestoreSegment")),
    addMembers: async (req) => {
      const result = await service.addMembers(req.segmentId, req.userIds);
      return counts(result, { added: BigInt(result.added) });
    },
    removeMembers: async (req) => {
      const result = await service.removeMembers(req.segmentId, req.userIds);
      return counts(result, { removed: BigInt(result.removed) });
    },
    updateSegment: unimplemented("UpdateSegment"),
    deleteSegment: unimplemented("DeleteSegment"),
    importMembers: unimplemented("ImportMembers"),
    listMembers: unimplemented("ListMembers"),
    populateFromQuery: unimplemented("PopulateFromQuery"),
    subtractSegment: unimplemented("SubtractSegment"),
    evaluateSegment: unimplemented("EvaluateSegment"),
    previewQuery: unimplemented("PreviewQuery"),
    listEvaluations: unimplemented("ListEvaluations"),
    diffMembership: unimplemented("DiffMembership"),
    rollbackSegment: unimplemented("RollbackSegment"),
    listSegmentHistory: unimplemented("ListSegmentHistory"),
  };
}

function counts<T extends object>(result: { unchanged: number; version: number; memberCount: number }, extra: T) {
  return { ...extra, unchanged: BigInt(result.unchanged), version: BigInt(result.version), memberCount: BigInt(result.memberCount) };
}
