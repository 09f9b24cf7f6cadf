/**
 * The bare typed client tests, the bench and scripts use: generated service methods over a real
 * connection, with no default deadline, no retry, and grpc-js ServiceErrors as they come (tests
 * assert on raw statuses). Applications use SegmentsClient (index.ts) instead.
 */
import type { DescService } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { bindService, type ServiceMethods } from "./calls.js";

export type { CallOptions } from "./calls.js";

/** Every method of a generated service as a promise- or iterator-returning function, and close(). */
export type Client<S> = ServiceMethods<S> & { close(): void };

/** Connects to `service` at `address` (host:port), insecure. Calls fail with grpc ServiceError. */
export function createClient<S extends DescService>(service: S, address: string, channelOptions: grpc.ChannelOptions = {}): Client<S> {
  const channel = new grpc.Client(address, grpc.credentials.createInsecure(), {
    "grpc.max_receive_message_length": -1,
    "grpc.max_send_message_length": -1,
    ...channelOptions,
  });
  const methods = bindService(channel, service, {
    defaultTimeoutMs: () => null,
    idempotent: () => false,
    retry: { maxAttempts: 1, initialBackoffMs: 0, maxBackoffMs: 0, multiplier: 1 },
    metadata: {},
    generateRequestIds: false,
    decodeErrors: false,
  });
  return Object.assign(methods as object, { close: () => channel.close() }) as Client<S>;
}
