/**
 * The typed client of the Segments service, imported as `segments/client`: SegmentsClient, its
 * errors and options, and the generated message types and enums of `segments.v1`.
 */
export { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
export * from "../gen/segments/v1/access_service_pb.js";
export * from "../gen/segments/v1/membership_service_pb.js";
export * from "../gen/segments/v1/segment_pb.js";
export * from "../gen/segments/v1/segment_service_pb.js";
export type { CallOptions, ServiceMethods } from "./calls.js";
export { DEFAULT_KEEPALIVE, type KeepaliveOptions, type TlsOptions } from "./channel.js";
export {
  Code,
  type ErrorContext,
  type FieldViolation,
  type PreconditionViolation,
  type QuotaViolation,
  type ResourceDetail,
  SegmentsError,
  toSegmentsError,
} from "./errors.js";
export { type CallKind, DEFAULT_DEADLINES, type Deadlines, type MethodPolicy, methodPolicy } from "./method-policy.js";
export {
  type AppliedChange,
  type ReplicaAnswer,
  type ReplicaOptions,
  type ReplicaSource,
  type ReplicaState,
  type ReplicaStatus,
  SegmentReplica,
} from "./replica.js";
export { DEFAULT_RETRY_POLICY, type RetryEvent, type RetryPolicy } from "./retry.js";
export { SegmentsClient, type SegmentsClientOptions } from "./segments-client.js";
