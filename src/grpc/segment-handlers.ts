/** SegmentService over gRPC: decode requests into domain calls and encode the answers. */
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { InvalidArgumentError } from "../errors.js";
import { SegmentHistoryAction, type Segment as SegmentMessage, SegmentStatus } from "../gen/segments/v1/segment_pb.js";
import type { SegmentService as SegmentServiceDesc } from "../gen/segments/v1/segment_service_pb.js";
import type { Segment } from "../model.js";
import type { MemberService } from "../service/member-service.js";
import type { SegmentDefinition, SegmentService } from "../service/segment-service.js";
import type { SegmentState } from "../service/segment-state.js";
import type { CallContext, ServiceHandlers } from "./adapter.js";
import { queryFromProto, scheduleFromProto, segmentToProto, statusFromProto, typeFromProto } from "./convert.js";
import { unimplemented } from "./unimplemented.js";

/** What the SegmentService handlers call. */
export interface SegmentHandlerDeps {
  segments: SegmentService;
  members: MemberService;
  state: SegmentState;
}

/** Handlers for every SegmentService method. */
export function segmentHandlers({ segments, members, state }: SegmentHandlerDeps): ServiceHandlers<typeof SegmentServiceDesc> {
  const wire = (segment: Segment) => ({ segment: segmentToProto(segment, state.directory.size) });
  return {
    createSegment: async (req, ctx) =>
      wire(
        await segments.createSegment(
          {
            name: req.name,
            description: req.description,
            type: typeFromProto(req.type, "type"),
            query: queryFromProto(req.query),
            schedule: scheduleFromProto(req.schedule),
          },
          caller(ctx),
        ),
      ),
    getSegment: (req) => wire(segments.getSegment(req.segmentId)),
    listSegments: (req) => {
      const page = segments.listSegments({
        pageSize: req.pageSize,
        pageToken: req.pageToken,
        showArchived: req.showArchived,
        type: typeFromProto(req.type, "type"),
        status: statusFromProto(req.status, "status"),
        nameContains: req.nameContains,
      });
      return { segments: page.segments.map((s) => segmentToProto(s, state.directory.size)), nextPageToken: page.nextPageToken };
    },
    updateSegment: async (req, ctx) => {
      if (req.segment?.id !== undefined && req.segment.id !== "" && req.segment.id !== req.segmentId) {
        throw new InvalidArgumentError("segment.id", "must be empty or equal segment_id");
      }
      return wire(await segments.updateSegment(req.segmentId, req.updateMask?.paths ?? [], definitionFromProto(req.segment), caller(ctx)));
    },
    deleteSegment: async (req) => {
      await segments.deleteSegment(req.segmentId);
      return {};
    },
    activateSegment: async (req, ctx) => wire(await segments.transition(req.segmentId, "ActivateSegment", caller(ctx))),
    pauseSegment: async (req, ctx) => wire(await segments.transition(req.segmentId, "PauseSegment", caller(ctx))),
    resumeSegment: async (req, ctx) => wire(await segments.transition(req.segmentId, "ResumeSegment", caller(ctx))),
    archiveSegment: async (req, ctx) => wire(await segments.transition(req.segmentId, "ArchiveSegment", caller(ctx))),
    restoreSegment: async (req, ctx) => wire(await segments.transition(req.segmentId, "RestoreSegment", caller(ctx))),
    listSegmentHistory: async (req) => {
      const page = await segments.listHistory(req.segmentId, req.pageSize, req.pageToken);
      return {
        entries: page.entries.map((e) => ({
          time: timestampFromDate(e.at),
          caller: e.caller,
          action: SegmentHistoryAction[e.action],
          fromStatus: e.fromStatus === null ? SegmentStatus.UNSPECIFIED : SegmentStatus[e.fromStatus],
          toStatus: SegmentStatus[e.toStatus],
          changedFields: e.changedFields,
        })),
        nextPageToken: page.nextPageToken,
      };
    },
    addMembers: async (req) => {
      const result = await members.addMembers(req.segmentId, req.userIds);
      return counts(result, { added: BigInt(result.added) });
    },
    removeMembers: async (req) => {
      const result = await members.removeMembers(req.segmentId, req.userIds);
      return counts(result, { removed: BigInt(result.removed) });
    },
    importMembers: unimplemented("ImportMembers"),
    listMembers: unimplemented("ListMembers"),
    populateFromQuery: unimplemented("PopulateFromQuery"),
    subtractSegment: unimplemented("SubtractSegment"),
    evaluateSegment: unimplemented("EvaluateSegment"),
    previewQuery: unimplemented("PreviewQuery"),
    listEvaluations: unimplemented("ListEvaluations"),
    diffMembership: unimplemented("DiffMembership"),
    rollbackSegment: unimplemented("RollbackSegment"),
  };
}

/** Who is calling, as the client declares it in `x-caller` (there is no authentication yet). */
function caller(ctx: CallContext): string {
  const value = ctx.metadata.get("x-caller")[0];
  return typeof value === "string" ? value.slice(0, 256) : "";
}

function definitionFromProto(segment: SegmentMessage | undefined): SegmentDefinition {
  return {
    name: segment?.name ?? "",
    description: segment?.description ?? "",
    type: segment === undefined ? undefined : typeFromProto(segment.type, "segment.type"),
    query: queryFromProto(segment?.query, "segment.query"),
    schedule: scheduleFromProto(segment?.schedule),
  };
}

function counts<T extends object>(result: { unchanged: number; version: number; memberCount: number }, extra: T) {
  return { ...extra, unchanged: BigInt(result.unchanged), version: BigInt(result.version), memberCount: BigInt(result.memberCount) };
}
