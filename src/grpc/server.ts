/**
 * The gRPC server: our two services, health and reflection on one port, with message limits,
 * per-call logging, and a shutdown that drains before it forces.
 */
import type { DescService } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { AudienceService } from "../audience/audience-service.js";
import type { Authenticator } from "../auth/authenticator.js";
import { OPEN_SERVICES } from "../auth/roles.js";
import type { TokenService } from "../auth/token-service.js";
import { UnavailableError } from "../errors.js";
import type { MembershipWatcher } from "../feed/watch.js";
import { file_grpc_health_v1_health, Health, HealthCheckResponse_ServingStatus } from "../gen/grpc/health/v1/health_pb.js";
import { AccessService as AccessServiceDesc, file_segments_v1_access_service } from "../gen/segments/v1/access_service_pb.js";
import {
  file_segments_v1_membership_service,
  MembershipService as MembershipServiceDesc,
} from "../gen/segments/v1/membership_service_pb.js";
import { file_segments_v1_segment_service, SegmentService as SegmentServiceDesc } from "../gen/segments/v1/segment_service_pb.js";
import { GrpcMetrics, type GrpcType } from "../metrics/grpc-metrics.js";
import type { EvaluationService } from "../service/evaluation-service.js";
import type { EventLoader } from "../service/event-loader.js";
import type { MemberReads } from "../service/member-reads.js";
import type { MemberService } from "../service/member-service.js";
import type { MembershipService } from "../service/membership-service.js";
import type { ReplicaReads } from "../service/replica-reads.js";
import type { SegmentService } from "../service/segment-service.js";
import type { SegmentState } from "../service/segment-state.js";
import { MAX_SEGMENTS_PER_CHECK, USER_ID_MAX_BYTES } from "../service/validation.js";
import { accessHandlers } from "./access-handlers.js";
import { addService, type CallObserver, type ServiceHandlers } from "./adapter.js";
import { decodeCheckRequest } from "./check-decoding.js";
import { HealthState } from "./health.js";
import { decodeImportMembers, type IdListLimits, idListDecoder } from "./id-list-decoding.js";
import { membershipHandlers } from "./membership-handlers.js";
import { addReflection } from "./reflection.js";
import type { Precheck } from "./request-decoding.js";
import { segmentHandlers } from "./segment-handlers.js";
import { isUnexpected } from "./status.js";
import type { StreamLimits } from "./stream-reader.js";
import { entryLimit, sizeLimit } from "./wire-limits.js";

/** How the server is set up. */
export interface GrpcServerDeps {
  log: Logger;
  maxMessageBytes: number;
  maxIdsPerCall: number;
  streams: StreamLimits;
  /** Checks every call of our services against the role table (health and reflection stay open). */
  authenticator: Authenticator;
  /** False: calls are not counted (METRICS_ENABLED=false, for the bench's cost figure). */
  countCalls?: boolean;
}

/** What the server serves, once the state is loaded. */
export interface ServedServices {
  segments: SegmentService;
  members: MemberService;
  reads: MemberReads;
  membership: MembershipService;
  audience: AudienceService;
  state: SegmentState;
  evaluations: EvaluationService;
  events: EventLoader;
  replica: ReplicaReads;
  watcher: MembershipWatcher;
  tokens: TokenService;
}

/**
 * The server pings a connection idle for this long and drops it when the ping goes unanswered,
 * so a vanished client cannot keep a stream (and what it holds) open.
 */
const KEEPALIVE_TIME_MS = 60_000;
const KEEPALIVE_TIMEOUT_MS = 20_000;

interface LoadedHandlers {
  segments: ServiceHandlers<typeof SegmentServiceDesc>;
  membership: ServiceHandlers<typeof MembershipServiceDesc>;
  access: ServiceHandlers<typeof AccessServiceDesc>;
}

/**
 * A gRPC server that binds before the state is loaded, so a taken port fails at once instead of
 * after the load. Every method is registered up front and delegates to the handlers `serve()`
 * installs; until then calls get UNAVAILABLE and health reports NOT_SERVING.
 */
export class GrpcServer {
  readonly health = new HealthState(
    [SegmentServiceDesc.typeName, MembershipServiceDesc.typeName, AccessServiceDesc.typeName],
    HealthCheckResponse_ServingStatus.NOT_SERVING,
  );
  /** Calls by method: started, finished by code and duration, stream messages (grpc_server_*). */
  readonly metrics = new GrpcMetrics();
  private readonly server: grpc.Server;
  private loaded: LoadedHandlers | undefined;

  constructor(private readonly deps: GrpcServerDeps) {
    this.server = new grpc.Server({
      "grpc.max_receive_message_length": deps.maxMessageBytes,
      "grpc.max_send_message_length": deps.maxMessageBytes,
      "grpc.keepalive_time_ms": KEEPALIVE_TIME_MS,
      "grpc.keepalive_timeout_ms": KEEPALIVE_TIMEOUT_MS,
      // Channelz stays on although nothing here serves it (its per-call tracking costs every call a
      // little): in grpc-js 1.14.7 forceShutdown destroys only the sessions channelz tracks, so with
      // it off a shutdown left an open ImportMembers stream running until its idle limit
      // (held-resources test: RESOURCE_EXHAUSTED after 30 s instead of CANCELLED).
    });
    const options = {
      log: deps.log,
      observe: observer(deps.log),
      metrics: deps.countCalls === false ? undefined : (method: string, type: GrpcType) => this.metrics.method(method, type),
      authorize: (method: string) =>
        OPEN_SERVICES.includes(method.slice(0, method.indexOf("/"))) ? undefined : deps.authenticator.guard(method),
      streams: deps.streams,
      prechecks: prechecks(deps.maxIdsPerCall),
      // Ids stay UTF-8 from the wire to the directory lookup (no string per id) on the paths that carry many.
      decoders: {
        [`${MembershipServiceDesc.typeName}/BatchCheckMembership`]: idListDecoder(
          "segments.v1.BatchCheckMembershipRequest",
          idListLimits(deps.maxIdsPerCall, SPLIT_BATCH),
        ),
        [`${SegmentServiceDesc.typeName}/AddMembers`]: idListDecoder(
          "segments.v1.AddMembersRequest",
          idListLimits(deps.maxIdsPerCall, SPLIT_LIST),
        ),
        [`${SegmentServiceDesc.typeName}/RemoveMembers`]: idListDecoder(
          "segments.v1.RemoveMembersRequest",
          idListLimits(deps.maxIdsPerCall, SPLIT_LIST),
        ),
        [`${SegmentServiceDesc.typeName}/ImportMembers`]: decodeImportMembers,
        // The single check skips protobuf-es's reader for the plain ASCII request.
        [`${MembershipServiceDesc.typeName}/CheckMembership`]: decodeCheckRequest,
      },
    };
    addService(
      this.server,
      SegmentServiceDesc,
      whenLoaded(SegmentServiceDesc, () => this.loaded?.segments),
      options,
    );
    addService(
      this.server,
      MembershipServiceDesc,
      whenLoaded(MembershipServiceDesc, () => this.loaded?.membership),
      options,
    );
    addService(
      this.server,
      AccessServiceDesc,
      whenLoaded(AccessServiceDesc, () => this.loaded?.access),
      options,
    );
    addService(this.server, Health, this.health.handlers(), options);
    addReflection(this.server, [
      file_segments_v1_segment_service,
      file_segments_v1_membership_service,
      file_segments_v1_access_service,
      file_grpc_health_v1_health,
    ]);
  }

  /** Installs the loaded services and reports SERVING. */
  serve(services: ServedServices): void {
    this.loaded = {
      segments: segmentHandlers(services),
      membership: membershipHandlers(services),
      access: accessHandlers(services.tokens),
    };
    this.health.startServing();
  }

  /** Binds and starts accepting calls (plaintext unless `credentials` say TLS); resolves to the bound port (useful with port 0). */
  listen(host: string, port: number, credentials = grpc.ServerCredentials.createInsecure()): Promise<number> {
    const address = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
    return new Promise((resolve, reject) => {
      this.server.bindAsync(address, credentials, (error, bound) => (error ? reject(error) : resolve(bound)));
    });
  }

  /** Stops at once, cancelling every call: for a start that failed after binding. */
  forceShutdown(): void {
    this.health.stopServing();
    this.server.forceShutdown();
  }

  /**
   * Stops accepting calls, reports NOT_SERVING, waits up to `graceMs` for calls in flight (open
   * streams never finish on their own), then cancels whatever is left.
   */
  async shutdown(graceMs: number): Promise<void> {
    this.health.stopServing();
    const drained = new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<"expired">((resolve) => {
      timer = setTimeout(() => resolve("expired"), graceMs);
    });
    if ((await Promise.race([drained, expired])) === "expired") {
      this.deps.log.warn({ graceMs }, "calls still running after the grace period; cancelling them");
      this.server.forceShutdown();
    }
    clearTimeout(timer);
  }
}

/** Requests of methods without a member list are at most this large: a filter holds at most 1 MiB of text, and a 100,000-character SQL query fits many times. */
const SMALL_REQUEST_BYTES = 2 * 1024 * 1024;
/** Methods whose requests carry member lists: MAX_MESSAGE_BYTES bounds them, and their id limits. */
const LIST_METHODS = new Set(["AddMembers", "RemoveMembers", "ImportMembers", "BatchCheckMembership", "ResolveUserIds"]);

/** What a refusal for too many ids tells the caller to do. */
const SPLIT_LIST = "split the list or use ImportMembers";
const SPLIT_BATCH = "split the batch";
/** Member lists may be large, but none of their ids: a segment id is 36 bytes, a user id 256. */
const SEGMENT_ID_MAX_BYTES = 64;

/** The limits of the id-list prechecks below, for the decoders that enforce them in their own walk. */
function idListLimits(maxIds: number, advice: string): IdListLimits {
  return { maxIds, advice, maxSegmentIdBytes: SEGMENT_ID_MAX_BYTES };
}

/** Per-message id and size limits, checked on the wire bytes before a request is decoded. */
function prechecks(maxIds: number): Record<string, Precheck> {
  const segments = SegmentServiceDesc.typeName;
  const memberships = MembershipServiceDesc.typeName;
  const ids = (segmentId: number, userIds: number) => ({
    [segmentId]: { bytes: SEGMENT_ID_MAX_BYTES, name: "segment_id" },
    [userIds]: { bytes: USER_ID_MAX_BYTES, name: "user_ids" },
  });
  const segmentLists = (fields: number[], name: string) =>
    entryLimit({ repeated: fields }, MAX_SEGMENTS_PER_CHECK * fields.length, name, "name at most 100 segments per list");
  const checks: Record<string, Precheck> = {
    [`${segments}/AddMembers`]: entryLimit({ repeated: [2], longest: ids(1, 2) }, maxIds, "user_ids", SPLIT_LIST),
    [`${segments}/RemoveMembers`]: entryLimit({ repeated: [2], longest: ids(1, 2) }, maxIds, "user_ids", SPLIT_LIST),
    // Import entries over 256 bytes are reported as invalid lines, not refused: only the id is capped.
    [`${segments}/ImportMembers`]: entryLimit(
      { repeated: [3], lines: [4], longest: { 1: { bytes: SEGMENT_ID_MAX_BYTES, name: "segment_id" } } },
      maxIds,
      "user_ids",
      "send more, smaller messages",
    ),
    [`${memberships}/BatchCheckMembership`]: entryLimit({ repeated: [2], longest: ids(1, 2) }, maxIds, "user_ids", SPLIT_BATCH),
    [`${memberships}/ResolveUserIds`]: entryLimit(
      { repeated: [1], longest: { 1: { bytes: USER_ID_MAX_BYTES, name: "user_ids" } } },
      maxIds,
      "user_ids",
      "split the batch",
    ),
    // Decoding 150,000 segment ids only to refuse them held the event loop for tens of ms.
    [`${memberships}/CheckMembership`]: entryLimit({ repeated: [2] }, MAX_SEGMENTS_PER_CHECK, "segment_ids", "split the check"),
    [`${memberships}/CountAudience`]: segmentLists([1, 2], "include_segment_ids"),
    [`${memberships}/StreamAudience`]: segmentLists([1, 2], "include_segment_ids"),
    [`${memberships}/ValidateTargeting`]: segmentLists([1], "segment_ids"),
    [`${memberships}/WatchMembership`]: segmentLists([1], "segment_ids"),
  };
  for (const service of [SegmentServiceDesc, MembershipServiceDesc, AccessServiceDesc]) {
    for (const method of service.methods) {
      if (LIST_METHODS.has(method.name)) continue;
      const key = `${service.typeName}/${method.name}`;
      checks[key] = sizeLimit(SMALL_REQUEST_BYTES, checks[key]);
    }
  }
  return checks;
}

/** Handlers for `service` that call the loaded ones, or fail with UNAVAILABLE while loading. */
function whenLoaded<S extends DescService>(service: S, current: () => ServiceHandlers<S> | undefined): ServiceHandlers<S> {
  const delegating: Record<string, (...args: unknown[]) => unknown> = {};
  for (const method of service.methods) {
    // Fixed parameters, not rest ones: no arguments array per call. No handler takes more than three.
    delegating[method.localName] = (request, second, third) => {
      const handlers = current() as Record<string, (...args: unknown[]) => unknown> | undefined;
      const handler = handlers?.[method.localName];
      if (handler === undefined) throw new UnavailableError("starting; state is loading");
      return handler(request, second, third);
    };
  }
  return delegating as unknown as ServiceHandlers<S>;
}

function observer(log: Logger): CallObserver {
  return (code, durationMs, ctx, error) => {
    if (error !== undefined && isUnexpected(error)) {
      ctx.log.error({ err: error, code: grpc.status[code] }, "call failed unexpectedly");
    } else if (log.isLevelEnabled("debug")) {
      ctx.log.debug({ code: grpc.status[code], durationMs }, "call finished");
    }
  };
}
