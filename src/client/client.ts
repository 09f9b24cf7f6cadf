/**
 * A typed gRPC client for our services, built from the same protobuf-es descriptors the server
 * uses. Tests, the bench and scripts call the service through it, over a real connection.
 */
import {
  create,
  type DescMessage,
  type DescMethod,
  type DescService,
  fromBinary,
  type MessageInitShape,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import * as grpc from "@grpc/grpc-js";

/** Per-call options. */
export interface CallOptions {
  metadata?: grpc.Metadata;
  deadline?: Date;
  signal?: AbortSignal;
}

type ClientMethod<M> = M extends { methodKind: "unary"; input: infer I extends DescMessage; output: infer O extends DescMessage }
  ? (request: MessageInitShape<I>, options?: CallOptions) => Promise<MessageShape<O>>
  : M extends { methodKind: "server_streaming"; input: infer I extends DescMessage; output: infer O extends DescMessage }
    ? (request: MessageInitShape<I>, options?: CallOptions) => AsyncIterable<MessageShape<O>>
    : M extends { methodKind: "client_streaming"; input: infer I extends DescMessage; output: infer O extends DescMessage }
      ? (requests: AsyncIterable<MessageInitShape<I>> | Iterable<MessageInitShape<I>>, options?: CallOptions) => Promise<MessageShape<O>>
      : never;

/** Every method of a generated service as a promise- or iterator-returning function. */
export type Client<S> =
  S extends GenService<infer R extends GenServiceMethods> ? { [K in keyof R]: ClientMethod<R[K]> } & { close(): void } : never;

/** Connects to `service` at `address` (host:port). Calls fail with grpc ServiceError. */
export function createClient<S extends DescService>(service: S, address: string, channelOptions: grpc.ChannelOptions = {}): Client<S> {
  const raw = new grpc.Client(address, grpc.credentials.createInsecure(), {
    "grpc.max_receive_message_length": -1,
    "grpc.max_send_message_length": -1,
    ...channelOptions,
  });
  const client: Record<string, unknown> = { close: () => raw.close() };
  for (const method of service.methods) client[method.localName] = bind(raw, method);
  return client as Client<S>;
}

function bind(raw: grpc.Client, method: DescMethod): unknown {
  const path = `/${method.parent.typeName}/${method.name}`;
  const serialize = (message: unknown) => {
    const bytes = toBinary(method.input, create(method.input, message as MessageInitShape<DescMessage>));
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
  const deserialize = (bytes: Buffer) => fromBinary(method.output, bytes);
  const callOptions = (options: CallOptions | undefined) => (options?.deadline === undefined ? {} : { deadline: options.deadline });
  const cancelOn = (call: grpc.Call, options: CallOptions | undefined) =>
    options?.signal?.addEventListener("abort", () => call.cancel(), { once: true });
  switch (method.methodKind) {
    case "unary":
      return (request: unknown, options?: CallOptions) =>
        new Promise((resolve, reject) => {
          const call = raw.makeUnaryRequest(
            path,
            serialize,
            deserialize,
            request,
            options?.metadata ?? new grpc.Metadata(),
            callOptions(options),
            (error, value) => (error ? reject(error) : resolve(value)),
          );
          cancelOn(call, options);
        });
    case "server_streaming":
      return (request: unknown, options?: CallOptions) => {
        const call = raw.makeServerStreamRequest(
          path,
          serialize,
          deserialize,
          request,
          options?.metadata ?? new grpc.Metadata(),
          callOptions(options),
        );
        cancelOn(call, options);
        return call as AsyncIterable<unknown>;
      };
    case "client_streaming":
      return (requests: AsyncIterable<unknown> | Iterable<unknown>, options?: CallOptions) =>
        new Promise((resolve, reject) => {
          const call = raw.makeClientStreamRequest(
            path,
            serialize,
            deserialize,
            options?.metadata ?? new grpc.Metadata(),
            callOptions(options),
            (error, value) => (error ? reject(error) : resolve(value)),
          );
          cancelOn(call, options);
          void pump(requests, call);
        });
    default:
      throw new Error(`${method.methodKind} methods are not supported`);
  }
}

/** Writes every request to the stream with backpressure, then half-closes it. */
async function pump(requests: AsyncIterable<unknown> | Iterable<unknown>, call: grpc.ClientWritableStream<unknown>): Promise<void> {
  try {
    for await (const request of requests) {
      if (!call.write(request)) await new Promise((resolve) => call.once("drain", resolve));
    }
    call.end();
  } catch {
    // The caller's iterator failed: abandon the call so the server applies nothing.
    call.cancel();
  }
}
