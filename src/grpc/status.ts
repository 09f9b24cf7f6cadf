/**
 * The one place where failures become gRPC statuses (DESIGN.md "Errors"). Domain errors carry
 * google.rpc details in `grpc-status-details-bin`; anything else is INTERNAL with a generic
 * message, since its text may leak internals.
 */
import { create, type DescMessage, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { type Any, anyPack, durationFromMs } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import {
  AlreadyExistsError,
  CancelledError,
  DeadlineExceededError,
  DomainError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  ResourceExhaustedError,
  UnauthenticatedError,
  UnavailableError,
} from "../errors.js";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  PreconditionFailureSchema,
  QuotaFailureSchema,
  ResourceInfoSchema,
  RetryInfoSchema,
} from "../gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../gen/google/rpc/status_pb.js";

const DOMAIN = "segments.v1";

/** The status a failed call ends with. */
export function toStatus(error: unknown, requestId: string): Partial<grpc.StatusObject> {
  if (isStatusLike(error)) return error;
  const { code, message, details } = describe(error);
  const info = pack(ErrorInfoSchema, {
    reason: error instanceof DomainError ? error.reason : "INTERNAL",
    domain: DOMAIN,
    metadata: { request_id: requestId },
  });
  const status = create(StatusSchema, { code, message, details: [info, ...details] });
  const metadata = new grpc.Metadata();
  const bytes = toBinary(StatusSchema, status);
  metadata.set("grpc-status-details-bin", Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  return { code, details: message, metadata };
}

/** Whether a failure was not the caller's doing and deserves an error log with its cause. */
export function isUnexpected(error: unknown): boolean {
  return !(error instanceof DomainError) && !isStatusLike(error);
}

function describe(error: unknown): { code: grpc.status; message: string; details: Any[] } {
  if (error instanceof InvalidArgumentError) {
    return {
      code: grpc.status.INVALID_ARGUMENT,
      message: error.message,
      details: [pack(BadRequestSchema, { fieldViolations: [{ field: error.field, description: error.message }] })],
    };
  }
  if (error instanceof NotFoundError || error instanceof AlreadyExistsError) {
    return {
      code: error instanceof NotFoundError ? grpc.status.NOT_FOUND : grpc.status.ALREADY_EXISTS,
      message: error.message,
      details: [
        pack(ResourceInfoSchema, { resourceType: error.resourceType, resourceName: error.resourceName, description: error.message }),
      ],
    };
  }
  if (error instanceof FailedPreconditionError) {
    return {
      code: grpc.status.FAILED_PRECONDITION,
      message: error.message,
      details: [
        pack(PreconditionFailureSchema, {
          violations: [{ type: error.subject.toUpperCase(), subject: error.subject, description: error.message }],
        }),
      ],
    };
  }
  if (error instanceof ResourceExhaustedError) {
    return {
      code: grpc.status.RESOURCE_EXHAUSTED,
      message: error.message,
      details: [pack(QuotaFailureSchema, { violations: [{ subject: error.limit, description: error.message }] })],
    };
  }
  if (error instanceof UnavailableError) {
    return {
      code: grpc.status.UNAVAILABLE,
      message: error.message,
      details: [pack(RetryInfoSchema, { retryDelay: durationFromMs(error.retryAfterMs) })],
    };
  }
  if (error instanceof DeadlineExceededError) {
    return {
      code: grpc.status.DEADLINE_EXCEEDED,
      message: error.message,
      details: [pack(QuotaFailureSchema, { violations: [{ subject: error.limit, description: error.message }] })],
    };
  }
  if (error instanceof CancelledError) return { code: grpc.status.CANCELLED, message: error.message, details: [] };
  if (error instanceof UnauthenticatedError) return { code: grpc.status.UNAUTHENTICATED, message: error.message, details: [] };
  if (error instanceof PermissionDeniedError) return { code: grpc.status.PERMISSION_DENIED, message: error.message, details: [] };
  return { code: grpc.status.INTERNAL, message: "internal error; the request id is in the error details", details: [] };
}

function pack<D extends DescMessage>(schema: D, init: MessageInitShape<D>): Any {
  return anyPack(schema, create(schema, init));
}

/** An already-built gRPC status (e.g. UNIMPLEMENTED from a stub) passes through unchanged. */
function isStatusLike(error: unknown): error is Partial<grpc.StatusObject> {
  return typeof error === "object" && error !== null && !(error instanceof Error) && typeof (error as { code?: unknown }).code === "number";
}
