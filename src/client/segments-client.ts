/**
 * SegmentsClient: both services over one connection, with a default deadline per call kind,
 * retries of UNAVAILABLE for idempotent methods, keepalive, TLS, and failures as SegmentsError.
 */
import type { DescMethod } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { AccessService } from "../gen/segments/v1/access_service_pb.js";
import { MembershipService } from "../gen/segments/v1/membership_service_pb.js";
import { SegmentService } from "../gen/segments/v1/segment_service_pb.js";
import { bindService, MAX_TIMEOUT_MS, type ServiceMethods } from "./calls.js";
import { channelSetup, DEFAULT_KEEPALIVE, type KeepaliveOptions, type TlsOptions } from "./channel.js";
import { abortError, Code, SegmentsError } from "./errors.js";
import { DEFAULT_DEADLINES, type Deadlines, methodPolicy } from "./method-policy.js";
import { type ReplicaOptions, SegmentReplica } from "./replica.js";
import { DEFAULT_RETRY_POLICY, type RetryEvent, type RetryPolicy, validateRetryPolicy } from "./retry.js";

/** How a SegmentsClient connects and calls. Every field is optional. */
export interface SegmentsClientOptions {
  /** Transport security; default: plaintext for loopback addresses, TLS with the system's CAs otherwise. */
  tls?: TlsOptions;
  /** Default deadline per call kind in ms (null: none), merged over DEFAULT_DEADLINES. */
  deadlines?: Partial<Deadlines>;
  /** Retry policy for UNAVAILABLE on idempotent methods, merged over DEFAULT_RETRY_POLICY; false: never retry. */
  retry?: Partial<RetryPolicy> | false;
  /** Called before each retry. */
  onRetry?: (event: RetryEvent) => void;
  /** Keepalive pings, merged over DEFAULT_KEEPALIVE. */
  keepalive?: Partial<KeepaliveOptions>;
  /** API token sent with every call as `authorization: Bearer <token>`; undefined or empty: none. */
  token?: string | undefined;
  /** Metadata sent with every call, e.g. `{ "x-caller": "alice@example.com" }` (the audit trail's "on behalf of"). */
  metadata?: Record<string, string>;
  /** Raw grpc-js channel options, applied last. */
  channelOptions?: grpc.ChannelOptions;
}

/** A client of the Segments service: `segments` (SegmentService) and `membership` (MembershipService). */
export class SegmentsClient {
  /** Administration and member management. */
  readonly segments: ServiceMethods<typeof SegmentService>;
  /** The hot path: membership checks, audiences, the change feed. */
  readonly membership: ServiceMethods<typeof MembershipService>;
  /** API tokens (admin) and the caller's own identity. */
  readonly access: ServiceMethods<typeof AccessService>;
  private readonly channel: grpc.Client;

  /** Connects lazily to `address` (host:port); the first call opens the connection. */
  constructor(address: string, options: SegmentsClientOptions = {}) {
    const { credentials, options: channelOptions } = channelSetup(
      address,
      options.tls,
      { ...DEFAULT_KEEPALIVE, ...options.keepalive },
      options.channelOptions ?? {},
    );
    this.channel = new grpc.Client(address, credentials, channelOptions);
    const deadlines = validateDeadlines({ ...DEFAULT_DEADLINES, ...definedOnly(options.deadlines ?? {}) });
    const retry =
      options.retry === false
        ? { ...DEFAULT_RETRY_POLICY, maxAttempts: 1 }
        : { ...DEFAULT_RETRY_POLICY, ...definedOnly(options.retry ?? {}) };
    const behaviour = {
      defaultTimeoutMs: (method: DescMethod) => deadlines[methodPolicy(method).kind],
      idempotent: (method: DescMethod) => methodPolicy(method).idempotent,
      retry: validateRetryPolicy(retry),
      metadata: {
        ...options.metadata,
        ...(options.token === undefined || options.token === "" ? {} : { authorization: `Bearer ${options.token}` }),
      },
      generateRequestIds: true,
      decodeErrors: true,
      onRetry: options.onRetry,
    };
    this.segments = bindService(this.channel, SegmentService, behaviour);
    this.membership = bindService(this.channel, MembershipService, behaviour);
    this.access = bindService(this.channel, AccessService, behaviour);
  }

  /** Resolves once the connection is up; fails with UNAVAILABLE at `deadline` (default 10 s), CANCELLED on abort. */
  waitForReady(options: { deadline?: Date; signal?: AbortSignal } = {}): Promise<void> {
    const { deadline = new Date(Date.now() + 10_000), signal } = options;
    if (signal?.aborted) return Promise.reject(abortError(signal));
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(abortError(signal as AbortSignal));
      signal?.addEventListener("abort", onAbort, { once: true });
      this.channel.waitForReady(deadline, (error) => {
        signal?.removeEventListener("abort", onAbort);
        if (error === undefined) resolve();
        else reject(new SegmentsError(Code.UNAVAILABLE, `not connected by the deadline: ${error.message}`, { cause: error }));
      });
    });
  }

  /** A live in-process replica of `segmentIds` (see replica.ts); resolves once loaded and following the feed. */
  replica(segmentIds: readonly string[], options: ReplicaOptions = {}): Promise<SegmentReplica> {
    return SegmentReplica.open(this.membership, segmentIds, options);
  }

  /** Closes the connection; calls still open fail with CANCELLED or UNAVAILABLE. */
  close(): void {
    this.channel.close();
  }
}

/** `options` without its undefined entries, so they leave the defaults in place. */
function definedOnly<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as Partial<T>;
}

function validateDeadlines(deadlines: Deadlines): Deadlines {
  for (const [kind, ms] of Object.entries(deadlines)) {
    if (ms !== null && !(typeof ms === "number" && ms >= 0 && ms <= MAX_TIMEOUT_MS)) {
      throw new RangeError(`deadlines.${kind} must be 0–${MAX_TIMEOUT_MS} ms or null, got ${ms}`);
    }
  }
  return deadlines;
}
