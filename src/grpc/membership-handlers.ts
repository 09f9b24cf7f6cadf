/** MembershipService over gRPC: the hot path, kept to decode → lookup → encode. */
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { AudienceService, SegmentVersionRead } from "../audience/audience-service.js";
import { noteForeground } from "../control/time-slice.js";
import { InvalidArgumentError } from "../errors.js";
import type { DeltaFormat as FeedFormat, WatchMessage } from "../feed/delta-messages.js";
import type { MembershipWatcher } from "../feed/watch.js";
import { DeltaFormat, type MembershipService as MembershipServiceDesc } from "../gen/segments/v1/membership_service_pb.js";
import { SegmentStatus } from "../gen/segments/v1/segment_pb.js";
import type { MembershipAnswer, MembershipService } from "../service/membership-service.js";
import type { ReplicaReads } from "../service/replica-reads.js";
import type { ServiceHandlers } from "./adapter.js";
import { encodeAudienceBatch } from "./audience-encoding.js";
import { encodeBatchCheckResponse, encodeCheckResponse } from "./check-encoding.js";
import { IdListBytes } from "./id-list-decoding.js";

/** What the MembershipService handlers call. */
export interface MembershipHandlerDeps {
  membership: MembershipService;
  audience: AudienceService;
  /** GetSegmentBitmap and ResolveUserIds: what a client-side replica loads. */
  replica: ReplicaReads;
  /** WatchMembership: the change feed. */
  watcher: MembershipWatcher;
}

/** Handlers for every MembershipService method. */
export function membershipHandlers({
  membership,
  audience,
  replica,
  watcher,
}: MembershipHandlerDeps): ServiceHandlers<typeof MembershipServiceDesc> {
  return {
    checkMembership: (req) => {
      noteForeground();
      return encodeCheckResponse(membership.checkMembership(req.userId, req.segmentIds));
    },
    batchCheckMembership: (req) => {
      noteForeground();
      const answer =
        req instanceof IdListBytes
          ? membership.batchCheckMembershipUtf8(req.segmentId, req.ids)
          : membership.batchCheckMembership(req.segmentId, req.userIds);
      return encodeBatchCheckResponse(answer);
    },
    listUserSegments: (req) => ({ results: membership.listUserSegments(req.userId).map(result) }),
    countAudience: (req) => {
      const { count, asOf } = audience.count(req.includeSegmentIds, req.excludeSegmentIds);
      return { count: BigInt(count), asOf: asOf.map(segmentVersion) };
    },
    streamAudience: (req, send) =>
      audience.stream(
        { include: req.includeSegmentIds, exclude: req.excludeSegmentIds, batchSize: req.batchSize, resumeToken: req.resumeToken },
        (batch) =>
          send(
            encodeAudienceBatch(batch.userIds, {
              resumeToken: batch.resumeToken,
              asOf: batch.first?.asOf.map(segmentVersion) ?? [],
              totalCount: BigInt(batch.first?.totalCount ?? 0),
              ...(batch.first?.snapshotKept === undefined ? {} : { snapshotKept: batch.first.snapshotKept }),
            }),
          ),
      ),
    validateTargeting: (req) => {
      const { valid, problems } = membership.validateTargeting(req.segmentIds);
      return {
        valid,
        problems: problems.map((p) => ({
          segmentId: p.segmentId,
          status: p.status === null ? SegmentStatus.UNSPECIFIED : SegmentStatus[p.status],
          reason: p.reason,
        })),
      };
    },
    watchMembership: (req, send, ctx) =>
      watcher.watch(
        { segmentIds: req.segmentIds, fromVersions: cursors(req.fromVersions), format: deltaFormat(req.deltaFormat) },
        (message) => send(watchResponse(message)),
        ctx.signal,
      ),
    getSegmentBitmap: async (req, send) => {
      const { chunks, everyone, stale, version, versionAt } = await replica.bitmap(req.segmentId);
      const base = { version: BigInt(version), versionTime: timestamp(versionAt), everyone, stale };
      for (const [i, bitmap] of chunks.entries()) await send({ ...base, bitmap, complete: i === chunks.length - 1 });
    },
    resolveUserIds: (req) => ({ uids: replica.resolveUserIds(req.userIds).map(BigInt) }),
  };
}

function result(answer: MembershipAnswer) {
  return {
    segmentId: answer.segmentId,
    member: answer.member,
    version: BigInt(answer.version),
    versionTime: timestamp(answer.versionAt),
    stale: answer.stale,
  };
}

function segmentVersion(read: SegmentVersionRead) {
  return { segmentId: read.segmentId, version: BigInt(read.version), time: timestamp(read.versionAt), stale: read.stale };
}

function watchResponse(m: WatchMessage) {
  return {
    segmentId: m.segmentId,
    version: BigInt(m.version),
    time: timestampFromDate(m.at),
    memberCount: BigInt(m.memberCount),
    enteredUserIds: m.entered,
    leftUserIds: m.left,
    enteredRoaring: m.enteredRoaring,
    leftRoaring: m.leftRoaring,
    versionComplete: m.complete,
  };
}

function cursors(fromVersions: { [segmentId: string]: bigint }): Map<string, number> {
  const result = new Map<string, number>();
  for (const [id, version] of Object.entries(fromVersions)) {
    // Larger than any version this service can reach; the watch refuses it as newer than current.
    result.set(id, version > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(version));
  }
  return result;
}

function deltaFormat(format: DeltaFormat): FeedFormat {
  switch (format) {
    case DeltaFormat.UNSPECIFIED:
    case DeltaFormat.USER_IDS:
      return "USER_IDS";
    case DeltaFormat.ROARING:
      return "ROARING";
    default:
      throw new InvalidArgumentError("delta_format", `${format} is not a DeltaFormat; use DELTA_FORMAT_USER_IDS or DELTA_FORMAT_ROARING`);
  }
}

function timestamp(date: Date | null) {
  return date === null ? undefined : timestampFromDate(date);
}
