/** SegmentService over gRPC: decode requests into domain calls and encode the answers. */
import { durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { InvalidArgumentError } from "../errors.js";
import { SegmentHistoryAction, type Segment as SegmentMessage, SegmentStatus } from "../gen/segments/v1/segment_pb.js";
import { EventFormat, ImportMode, PopulateMode, type SegmentService as SegmentServiceDesc } from "../gen/segments/v1/segment_service_pb.js";
import type { Segment } from "../model.js";
import type { EvaluationService } from "../service/evaluation-service.js";
import type { EventLoader } from "../service/event-loader.js";
import type { MemberReads } from "../service/member-reads.js";
import type { MemberService, ImportMode as ServiceImportMode, UserIds } from "../service/member-service.js";
import type { Actor, SegmentDefinition, SegmentService } from "../service/segment-service.js";
import type { SegmentState } from "../service/segment-state.js";
import type { CallContext, ServiceHandlers } from "./adapter.js";
import { evaluationToProto, queryFromProto, scheduleFromProto, segmentToProto, statusFromProto, typeFromProto } from "./convert.js";
import { IdListBytes } from "./id-list-decoding.js";

/** What the SegmentService handlers call. */
export interface SegmentHandlerDeps {
  segments: SegmentService;
  members: MemberService;
  reads: MemberReads;
  state: SegmentState;
  evaluations: EvaluationService;
  events: EventLoader;
}

/** Handlers for every SegmentService method. */
export function segmentHandlers({
  segments,
  members,
  reads,
  state,
  evaluations,
  events,
}: SegmentHandlerDeps): ServiceHandlers<typeof SegmentServiceDesc> {
  const vetQuery = (query: Parameters<SegmentService["vetQuery"]>[1], field: string) => segments.vetQuery(undefined, query, field);
  const toProto = (segment: Segment) => segmentToProto(segment, state.directory.size, segments.freshness(segment));
  const wire = (segment: Segment) => ({ segment: toProto(segment) });
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
          actor(ctx),
          ctx.signal,
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
      return { segments: page.segments.map(toProto), nextPageToken: page.nextPageToken };
    },
    updateSegment: async (req, ctx) => {
      if (req.segment?.id !== undefined && req.segment.id !== "" && req.segment.id !== req.segmentId) {
        throw new InvalidArgumentError("segment.id", "must be empty or equal segment_id");
      }
      return wire(
        await segments.updateSegment(req.segmentId, req.updateMask?.paths ?? [], definitionFromProto(req.segment), actor(ctx), ctx.signal),
      );
    },
    deleteSegment: async (req, ctx) => {
      await segments.deleteSegment(req.segmentId, ctx.signal);
      return {};
    },
    activateSegment: async (req, ctx) => wire(await segments.transition(req.segmentId, "ActivateSegment", actor(ctx), ctx.signal)),
    pauseSegment: async (req, ctx) => wire(await segments.transition(req.segmentId, "PauseSegment", actor(ctx), ctx.signal)),
    resumeSegment: async (req, ctx) => wire(await segments.transition(req.segmentId, "ResumeSegment", actor(ctx), ctx.signal)),
    archiveSegment: async (req, ctx) => wire(await segments.transition(req.segmentId, "ArchiveSegment", actor(ctx), ctx.signal)),
    restoreSegment: async (req, ctx) => wire(await segments.transition(req.segmentId, "RestoreSegment", actor(ctx), ctx.signal)),
    listSegmentHistory: async (req) => {
      const page = await segments.listHistory(req.segmentId, req.pageSize, req.pageToken);
      return {
        entries: page.entries.map((e) => ({
          time: timestampFromDate(e.at),
          caller: e.caller,
          onBehalfOf: e.onBehalfOf,
          action: SegmentHistoryAction[e.action],
          fromStatus: e.fromStatus === null ? SegmentStatus.UNSPECIFIED : SegmentStatus[e.fromStatus],
          toStatus: SegmentStatus[e.toStatus],
          changedFields: e.changedFields,
        })),
        nextPageToken: page.nextPageToken,
      };
    },
    addMembers: async (req, ctx) => {
      const result = await members.addMembers(req.segmentId, idsOf(req), ctx.signal);
      return counts(result, { added: BigInt(result.added) });
    },
    removeMembers: async (req, ctx) => {
      const result = await members.removeMembers(req.segmentId, idsOf(req), ctx.signal);
      return counts(result, { removed: BigInt(result.removed) });
    },
    importMembers: async (requests, ctx) => {
      const { first, rest } = await firstOf(requests);
      const mode = importModeFromProto(first.mode);
      const chunks = (async function* () {
        yield { userIds: idsOf(first), text: first.text };
        for await (const next of rest) {
          if (next.segmentId !== "" && next.segmentId !== first.segmentId)
            throw new InvalidArgumentError("segment_id", "must be the same in every message");
          if (next.mode !== ImportMode.UNSPECIFIED && next.mode !== first.mode)
            throw new InvalidArgumentError("mode", "must be the same in every message");
          yield { userIds: idsOf(next), text: next.text };
        }
      })();
      const result = await members.importMembers(first.segmentId, mode, chunks, ctx.signal);
      return {
        ...counts(result, { added: BigInt(result.added), removed: BigInt(result.removed) }),
        invalid: BigInt(result.invalidCount),
        invalidLines: result.invalid.map((entry) => ({ line: BigInt(entry.line), reason: entry.reason })),
      };
    },
    listMembers: (req) => {
      const page = reads.listMembers(req.segmentId, req.pageSize, req.pageToken);
      return { userIds: page.userIds, nextPageToken: page.nextPageToken, version: BigInt(page.version) };
    },
    subtractSegment: async (req, ctx) => {
      const result = await members.subtractSegment(req.segmentId, req.subtractSegmentId, ctx.signal);
      return {
        removed: BigInt(result.removed),
        version: BigInt(result.version),
        memberCount: BigInt(result.memberCount),
        subtractedVersion: BigInt(result.subtractedVersion),
      };
    },
    diffMembership: async (req) => {
      const page = await reads.diffMembership(req.segmentId, Number(req.fromVersion), Number(req.toVersion), req.pageSize, req.pageToken);
      return {
        enteredCount: BigInt(page.enteredCount),
        leftCount: BigInt(page.leftCount),
        enteredUserIds: page.entered,
        leftUserIds: page.left,
        nextPageToken: page.nextPageToken,
        toVersion: BigInt(page.toVersion),
      };
    },
    rollbackSegment: async (req, ctx) => {
      const result = await members.rollback(req.segmentId, Number(req.toVersion), ctx.signal);
      return {
        version: BigInt(result.version),
        memberCount: BigInt(result.memberCount),
        added: BigInt(result.added),
        removed: BigInt(result.removed),
      };
    },
    populateFromQuery: async (req, ctx) => {
      const query = queryFromProto(req.query);
      if (query === null) throw new InvalidArgumentError("query", "is required");
      const mode = req.mode === PopulateMode.ADD ? "ADD" : req.mode === PopulateMode.REMOVE ? "REMOVE" : undefined;
      if (mode === undefined) throw new InvalidArgumentError("mode", "is required: ADD or REMOVE");
      await vetQuery(query, "query");
      const result = await evaluations.populate(req.segmentId, query, mode, timeZoneOf(req.timeZone), ctx.signal);
      return { ...counts(result, { added: BigInt(result.added), removed: BigInt(result.removed) }) };
    },
    evaluateSegment: async (req, ctx) => ({
      evaluation: evaluationToProto(await evaluations.evaluate(req.segmentId, "MANUAL", ctx.signal)),
    }),
    previewQuery: async (req, ctx) => {
      const query = queryFromProto(req.query);
      if (query === null) throw new InvalidArgumentError("query", "is required");
      await vetQuery(query, "query");
      const started = performance.now();
      const preview = await evaluations.preview(query, timeZoneOf(req.timeZone), req.sampleSize, ctx.signal);
      return {
        count: BigInt(preview.count),
        sampleUserIds: preview.sample,
        duration: durationFromMs(Math.round(performance.now() - started)),
      };
    },
    listEvaluations: async (req) => {
      const page = await evaluations.list(req.segmentId, req.pageSize, req.pageToken);
      return {
        evaluations: page.runs.map((run) =>
          evaluationToProto({ ...run, error: run.status === "SUCCEEDED" ? null : (run.error ?? run.status.toLowerCase()) }),
        ),
        nextPageToken: page.nextPageToken,
      };
    },
    loadEvents: async (requests, ctx) => {
      let format: EventFormat | undefined;
      const chunks = (async function* () {
        for await (const next of requests) {
          if (format === undefined) {
            if (next.format === EventFormat.UNSPECIFIED)
              throw new InvalidArgumentError("format", "is required in the first message: NDJSON or CSV");
            format = next.format;
          } else if (next.format !== EventFormat.UNSPECIFIED && next.format !== format) {
            throw new InvalidArgumentError("format", "must be the same in every message");
          }
          yield next.text;
        }
      })();
      // The format is known once the first message is read; peek at it before the loader starts.
      const first = await chunks.next();
      if (first.done === true || format === undefined)
        throw new InvalidArgumentError("format", "the stream ended before its first message");
      const head = first.value;
      const all = (async function* () {
        yield head;
        yield* chunks;
      })();
      const result = await events.loadEvents(format === EventFormat.CSV ? "csv" : "ndjson", all, ctx.signal);
      return {
        loaded: BigInt(result.loaded),
        rejected: BigInt(result.rejected),
        rejectedLines: result.rejectedLines.map((entry) => ({ line: BigInt(entry.line), reason: entry.reason })),
      };
    },
  };
}

/** A request's time zone for relative windows: empty means UTC (the compiler vets the name). */
function timeZoneOf(zone: string): string {
  return zone === "" ? "UTC" : zone;
}

/** Who is calling: the authenticated identity, and whom it acts for as the client declares in `x-caller`. */
function actor(ctx: CallContext): Actor {
  const value = ctx.metadata.get("x-caller")[0];
  return { caller: ctx.identity.auditName, onBehalfOf: typeof value === "string" ? value.slice(0, 256) : "" };
}

/** The first message of a client stream (required) and an iterator over the rest. */
async function firstOf<T>(stream: AsyncIterable<T>): Promise<{ first: T; rest: AsyncIterator<T> & AsyncIterable<T> }> {
  const iterator = stream[Symbol.asyncIterator]();
  const head = await iterator.next();
  if (head.done === true) throw new InvalidArgumentError("segment_id", "the stream ended before its first message");
  const rest = { next: () => iterator.next(), [Symbol.asyncIterator]: () => rest };
  return { first: head.value, rest };
}

function importModeFromProto(mode: ImportMode): ServiceImportMode {
  const name = ImportMode[mode] as string | undefined;
  if (mode === ImportMode.UNSPECIFIED || name === undefined)
    throw new InvalidArgumentError("mode", "is required in the first message: ADD, REMOVE or REPLACE");
  return name as ServiceImportMode;
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

/** A request's user ids: UTF-8 byte ranges when the wire decoder read it, else protobuf-es's strings. */
function idsOf(req: { userIds: string[] }): UserIds {
  return req instanceof IdListBytes ? req.ids : req.userIds;
}
