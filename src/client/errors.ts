/**
 * Failed calls as one typed error: the gRPC status plus the google.rpc details the service puts in
 * `grpc-status-details-bin` (ErrorInfo, BadRequest, ResourceInfo, PreconditionFailure,
 * QuotaFailure, RetryInfo), decoded so callers never parse status bytes themselves.
 */
import { createRegistry, fromBinary, type Message } from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import { Metadata, status } from "@grpc/grpc-js";
import {
  type BadRequest,
  BadRequestSchema,
  type ErrorInfo,
  ErrorInfoSchema,
  type PreconditionFailure,
  PreconditionFailureSchema,
  type QuotaFailure,
  QuotaFailureSchema,
  type ResourceInfo,
  ResourceInfoSchema,
  type RetryInfo,
  RetryInfoSchema,
} from "../gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../gen/google/rpc/status_pb.js";

/** gRPC status codes (`Code.NOT_FOUND`, …): the `code` of a SegmentsError. */
export { status as Code };

/** A request field that was refused, and why (google.rpc.BadRequest). */
export interface FieldViolation {
  /** Path of the field, e.g. `user_ids[3]` or `query.filter.all.filters[0].event.min_count`. */
  field: string;
  description: string;
}

/** A condition the call did not meet (google.rpc.PreconditionFailure), e.g. the segment's status. */
export interface PreconditionViolation {
  type: string;
  subject: string;
  description: string;
}

/** A limit the call ran into (google.rpc.QuotaFailure); `subject` names the limit. */
export interface QuotaViolation {
  subject: string;
  description: string;
}

/** The resource an error is about (google.rpc.ResourceInfo): the unknown segment, the name holder. */
export interface ResourceDetail {
  type: string;
  name: string;
  owner: string;
  description: string;
}

const DETAILS = createRegistry(
  ErrorInfoSchema,
  BadRequestSchema,
  ResourceInfoSchema,
  PreconditionFailureSchema,
  QuotaFailureSchema,
  RetryInfoSchema,
);

/** What the client knows about a call beyond its status. */
export interface ErrorContext {
  /** `segments.v1.SegmentService/AddMembers`. */
  method?: string;
  /** The x-request-id the client sent, used when the status carries none. */
  requestId?: string;
}

/** A failed call: its gRPC code and message, with the service's error details decoded. */
export class SegmentsError extends Error {
  override readonly name = "SegmentsError";
  /** The gRPC status code. */
  readonly code: status;
  /** The code's name, e.g. `INVALID_ARGUMENT`. */
  readonly codeName: string;
  /** The method that failed, e.g. `segments.v1.MembershipService/CheckMembership`. */
  readonly method: string | undefined;
  /** ErrorInfo.reason: a stable UPPER_SNAKE identifier of the failure. */
  readonly reason: string | undefined;
  /** ErrorInfo.domain: `segments.v1` for the service's own errors. */
  readonly domain: string | undefined;
  /** The request id the server logged the call under (ErrorInfo metadata), else the one sent. */
  readonly requestId: string | undefined;
  /** ErrorInfo.metadata (request_id included). */
  readonly errorMetadata: Readonly<Record<string, string>>;
  readonly fieldViolations: readonly FieldViolation[];
  readonly preconditionViolations: readonly PreconditionViolation[];
  readonly quotaViolations: readonly QuotaViolation[];
  readonly resource: ResourceDetail | undefined;
  /** RetryInfo.retry_delay in milliseconds: how long the server asks callers to wait. */
  readonly retryDelayMs: number | undefined;
  /** Every decoded detail message, including kinds not surfaced above. */
  readonly details: readonly Message[];
  /** The response trailers. */
  readonly metadata: Metadata;

  constructor(
    code: status,
    message: string,
    options: { details?: readonly Message[]; metadata?: Metadata; context?: ErrorContext; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    const details = options.details ?? [];
    const info = find<ErrorInfo>(details, ErrorInfoSchema.typeName);
    const badRequest = find<BadRequest>(details, BadRequestSchema.typeName);
    const precondition = find<PreconditionFailure>(details, PreconditionFailureSchema.typeName);
    const quota = find<QuotaFailure>(details, QuotaFailureSchema.typeName);
    const resource = find<ResourceInfo>(details, ResourceInfoSchema.typeName);
    const retry = find<RetryInfo>(details, RetryInfoSchema.typeName);
    this.code = code;
    this.codeName = status[code] ?? `CODE_${code}`;
    this.method = options.context?.method;
    this.reason = info?.reason;
    this.domain = info?.domain;
    this.errorMetadata = { ...info?.metadata };
    this.requestId = info?.metadata.request_id ?? options.context?.requestId;
    this.fieldViolations = (badRequest?.fieldViolations ?? []).map(({ field, description }) => ({ field, description }));
    this.preconditionViolations = (precondition?.violations ?? []).map(({ type, subject, description }) => ({
      type,
      subject,
      description,
    }));
    this.quotaViolations = (quota?.violations ?? []).map(({ subject, description }) => ({ subject, description }));
    this.resource =
      resource === undefined
        ? undefined
        : { type: resource.resourceType, name: resource.resourceName, owner: resource.owner, description: resource.description };
    this.retryDelayMs =
      retry?.retryDelay === undefined ? undefined : Number(retry.retryDelay.seconds) * 1_000 + Math.round(retry.retryDelay.nanos / 1e6);
    this.details = details;
    this.metadata = options.metadata ?? new Metadata();
  }
}

/** The SegmentsError for any failure of a call: a grpc-js ServiceError is decoded, anything else is UNKNOWN. */
export function toSegmentsError(error: unknown, context: ErrorContext = {}): SegmentsError {
  if (error instanceof SegmentsError) return error;
  if (!isServiceError(error)) {
    return new SegmentsError(status.UNKNOWN, error instanceof Error ? error.message : String(error), { context, cause: error });
  }
  return new SegmentsError(error.code, error.details, {
    details: decodeDetails(error.metadata),
    metadata: error.metadata,
    context,
    cause: error,
  });
}

/** The error a call ends with when the caller's AbortSignal fired: CANCELLED, the signal's reason as cause. */
export function abortError(signal: AbortSignal, context: ErrorContext = {}): SegmentsError {
  return new SegmentsError(status.CANCELLED, "cancelled by the caller's AbortSignal", { context, cause: signal.reason });
}

function decodeDetails(metadata: Metadata): Message[] {
  const raw = metadata.get("grpc-status-details-bin")[0];
  if (!(raw instanceof Buffer)) return [];
  try {
    return fromBinary(StatusSchema, raw).details.flatMap((any) => anyUnpack(any, DETAILS) ?? []);
  } catch {
    // Undecodable details do not hide the status itself.
    return [];
  }
}

function find<T extends Message>(details: readonly Message[], typeName: string): T | undefined {
  return details.find((detail) => detail.$typeName === typeName) as T | undefined;
}

interface ServiceErrorLike {
  code: status;
  details: string;
  metadata: Metadata;
}

function isServiceError(error: unknown): error is ServiceErrorLike {
  return (
    error instanceof Error &&
    typeof (error as Partial<ServiceErrorLike>).code === "number" &&
    typeof (error as Partial<ServiceErrorLike>).details === "string" &&
    (error as Partial<ServiceErrorLike>).metadata instanceof Metadata
  );
}
