/**
 * Calls of generated service methods over one grpc-js channel: unary calls as promises, server
 * streams as async iterators (leaving the loop cancels the call), client streams fed from any
 * iterable with backpressure. Deadlines, retries, metadata and error decoding come from a
 * CallBehaviour: SegmentsClient sets them all, createClient leaves them off.
 */
import { randomUUID } from "node:crypto";
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
import { abortError, type ErrorContext, toSegmentsError } from "./errors.js";
import { type RetryEvent, type RetryPolicy, retryDelay, sleep } from "./retry.js";

/** Options of one call. */
export interface CallOptions {
  /** Absolute deadline; wins over `timeoutMs` and the default of the method's kind. */
  deadline?: Date;
  /** Deadline in milliseconds from the call's start, spanning its retries; null for none. */
  timeoutMs?: number | null;
  /** Aborting cancels the call (and any retry still to come); it then fails with CANCELLED. */
  signal?: AbortSignal;
  /** Request metadata, added to the client's. */
  metadata?: grpc.Metadata | Record<string, string>;
  /** Sent as `x-request-id` by every attempt of the call; SegmentsClient generates one when absent. */
  requestId?: string;
  /** `false`: do not retry this call even if its method is idempotent. */
  retry?: false;
}

type ClientMethod<M> = M extends { methodKind: "unary"; input: infer I extends DescMessage; output: infer O extends DescMessage }
  ? (request: MessageInitShape<I>, options?: CallOptions) => Promise<MessageShape<O>>
  : M extends { methodKind: "server_streaming"; input: infer I extends DescMessage; output: infer O extends DescMessage }
    ? (request: MessageInitShape<I>, options?: CallOptions) => AsyncIterable<MessageShape<O>>
    : M extends { methodKind: "client_streaming"; input: infer I extends DescMessage; output: infer O extends DescMessage }
      ? (requests: AsyncIterable<MessageInitShape<I>> | Iterable<MessageInitShape<I>>, options?: CallOptions) => Promise<MessageShape<O>>
      : never;

/** Every method of a generated service as a promise- or iterator-returning function. */
export type ServiceMethods<S> = S extends GenService<infer R extends GenServiceMethods> ? { [K in keyof R]: ClientMethod<R[K]> } : never;

/** How calls behave beyond sending and receiving. */
export interface CallBehaviour {
  /** The deadline a call of `method` gets when its options name none, in ms; null for none. */
  defaultTimeoutMs(method: DescMethod): number | null;
  /** Whether UNAVAILABLE from `method` may be retried. */
  idempotent(method: DescMethod): boolean;
  retry: RetryPolicy;
  /** Metadata sent with every call. */
  metadata: Readonly<Record<string, string>>;
  /** Send a generated `x-request-id` when the call gives none. */
  generateRequestIds: boolean;
  /** Reject with SegmentsError (true) or with grpc-js's ServiceError as it is (false). */
  decodeErrors: boolean;
  onRetry?: ((event: RetryEvent) => void) | undefined;
}

/** The methods of `service`, calling over `channel`. */
export function bindService<S extends DescService>(channel: grpc.Client, service: S, behaviour: CallBehaviour): ServiceMethods<S> {
  const methods: Record<string, unknown> = {};
  for (const method of service.methods) methods[method.localName] = bindMethod(channel, method, behaviour);
  return methods as ServiceMethods<S>;
}

function bindMethod(channel: grpc.Client, method: DescMethod, behaviour: CallBehaviour): unknown {
  switch (method.methodKind) {
    case "unary":
      return (request: unknown, options?: CallOptions) => unary(channel, () => new Call(method, behaviour, options), request);
    case "server_streaming":
      return (request: unknown, options?: CallOptions) => serverStream(channel, () => new Call(method, behaviour, options), request);
    case "client_streaming":
      return (requests: AsyncIterable<unknown> | Iterable<unknown>, options?: CallOptions) =>
        clientStream(channel, () => new Call(method, behaviour, options), requests);
    default:
      throw new Error(`${method.methodKind} methods are not supported`);
  }
}

/** A year: longer deadlines are a mistake (grpc-js encodes them as hours anyway); null means none. */
export const MAX_TIMEOUT_MS = 366 * 24 * 3_600_000;

/** One logical call: its deadline, request id and metadata, shared by its attempts. */
class Call {
  readonly path: string;
  readonly deadline: Date | undefined;
  readonly signal: AbortSignal | undefined;
  readonly context: ErrorContext;
  readonly serialize: (message: unknown) => Buffer;
  readonly deserialize: (bytes: Buffer) => unknown;
  private readonly requestId: string | undefined;

  constructor(
    readonly method: DescMethod,
    private readonly behaviour: CallBehaviour,
    private readonly options: CallOptions = {},
  ) {
    this.path = `/${method.parent.typeName}/${method.name}`;
    const timeoutMs = options.timeoutMs === undefined ? behaviour.defaultTimeoutMs(method) : options.timeoutMs;
    if (timeoutMs !== null && !(timeoutMs >= 0 && timeoutMs <= MAX_TIMEOUT_MS))
      throw new RangeError(`timeoutMs must be 0–${MAX_TIMEOUT_MS} or null, got ${timeoutMs}`);
    this.deadline = options.deadline ?? (timeoutMs === null ? undefined : new Date(Date.now() + timeoutMs));
    this.signal = options.signal;
    this.requestId = options.requestId ?? (behaviour.generateRequestIds ? randomUUID() : undefined);
    this.context = { method: this.path.slice(1), ...(this.requestId === undefined ? {} : { requestId: this.requestId }) };
    this.serialize = (message) => {
      const bytes = toBinary(method.input, create(method.input, message as MessageInitShape<DescMessage>));
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    };
    this.deserialize = (bytes) => fromBinary(method.output, bytes);
  }

  /** Fresh metadata for one attempt (grpc-js may keep a reference to what it sends). */
  metadata(): grpc.Metadata {
    const metadata = new grpc.Metadata();
    for (const [key, value] of Object.entries(this.behaviour.metadata)) metadata.set(key, value);
    const given = this.options.metadata;
    if (given instanceof grpc.Metadata) metadata.merge(given);
    else for (const [key, value] of Object.entries(given ?? {})) metadata.set(key, value);
    if (this.requestId !== undefined && metadata.get("x-request-id").length === 0) metadata.set("x-request-id", this.requestId);
    return metadata;
  }

  grpcOptions(): grpc.CallOptions {
    return this.deadline === undefined ? {} : { deadline: this.deadline };
  }

  /** Cancels `call` when the caller aborts; returns the detach function. */
  cancelOnAbort(call: { cancel(): void }): () => void {
    const signal = this.signal;
    if (signal === undefined) return () => {};
    const onAbort = () => call.cancel();
    signal.addEventListener("abort", onAbort, { once: true });
    if (signal.aborted) call.cancel();
    return () => signal.removeEventListener("abort", onAbort);
  }

  throwIfAborted(): void {
    if (this.signal?.aborted) throw abortError(this.signal, this.context);
  }

  /** What the caller sees for `error` when no retry follows. */
  failure(error: unknown): unknown {
    if (this.signal?.aborted && (this.behaviour.decodeErrors || !(error instanceof Error))) return abortError(this.signal, this.context);
    return this.behaviour.decodeErrors ? toSegmentsError(error, this.context) : error;
  }

  /**
   * After attempt `attempt` failed with `error`: waits and returns when another attempt may
   * follow (UNAVAILABLE, idempotent method, attempts and deadline left), else throws the failure.
   */
  async beforeRetry(error: unknown, attempt: number, retryable: boolean): Promise<void> {
    const signal = this.signal;
    if (signal?.aborted) throw this.failure(error);
    const decoded = toSegmentsError(error, this.context);
    const delayMs =
      retryable && this.options.retry !== false && this.behaviour.idempotent(this.method)
        ? retryDelay(decoded, attempt, this.behaviour.retry, this.deadline, Date.now())
        : undefined;
    if (delayMs === undefined) throw this.failure(error);
    this.behaviour.onRetry?.({ method: this.context.method ?? this.path, attempt, delayMs, error: decoded });
    try {
      await sleep(delayMs, signal);
    } catch {
      throw this.failure(error);
    }
  }
}

async function unary(channel: grpc.Client, start: () => Call, request: unknown): Promise<unknown> {
  const call = start();
  for (let attempt = 1; ; attempt++) {
    call.throwIfAborted();
    try {
      return await unaryAttempt(channel, call, request);
    } catch (error: unknown) {
      await call.beforeRetry(error, attempt, true);
    }
  }
}

function unaryAttempt(channel: grpc.Client, call: Call, request: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let detach = () => {};
    const grpcCall = channel.makeUnaryRequest(
      call.path,
      call.serialize,
      call.deserialize,
      request,
      call.metadata(),
      call.grpcOptions(),
      (error, value) => {
        detach();
        if (error) reject(error);
        else resolve(value);
      },
    );
    detach = call.cancelOnAbort(grpcCall);
  });
}

/**
 * A server stream as an async generator: the call starts at the first `next()`, and ends —
 * cancelled on the server too — when the consumer stops early (`break`, `return`, a throw in the
 * loop body) or aborts. UNAVAILABLE is retried only before the first message.
 */
async function* serverStream(channel: grpc.Client, start: () => Call, request: unknown): AsyncGenerator<unknown, void, undefined> {
  const call = start();
  for (let attempt = 1; ; attempt++) {
    call.throwIfAborted();
    const stream = channel.makeServerStreamRequest(
      call.path,
      call.serialize,
      call.deserialize,
      request,
      call.metadata(),
      call.grpcOptions(),
    );
    // The status of a call cancelled after the loop left it arrives as an 'error' with nobody
    // iterating any more; without a listener that would be an uncaught exception.
    stream.on("error", () => {});
    const detach = call.cancelOnAbort(stream);
    let delivered = false;
    try {
      for await (const message of stream) {
        delivered = true;
        yield message;
      }
      return;
    } catch (error: unknown) {
      await call.beforeRetry(error, attempt, !delivered);
    } finally {
      detach();
      // Leaving the loop early only destroys grpc-js's Readable; the call itself must be
      // cancelled or the server keeps streaming into its flow-control window. No-op once ended.
      stream.cancel();
    }
  }
}

async function clientStream(
  channel: grpc.Client,
  start: () => Call,
  requests: AsyncIterable<unknown> | Iterable<unknown>,
): Promise<unknown> {
  const call = start();
  call.throwIfAborted();
  let finish = () => {};
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  return new Promise((resolve, reject) => {
    let detach = () => {};
    const stream = channel.makeClientStreamRequest(
      call.path,
      call.serialize,
      call.deserialize,
      call.metadata(),
      call.grpcOptions(),
      (error, value) => {
        detach();
        finish();
        if (error) reject(call.failure(error));
        else resolve(value);
      },
    );
    detach = call.cancelOnAbort(stream);
    void pump(requests, stream, finished);
  });
}

/**
 * Writes every request with backpressure, then half-closes. Stops reading `requests` once the
 * call has ended (the server answered early or the call was cancelled), closing the iterator.
 */
async function pump(
  requests: AsyncIterable<unknown> | Iterable<unknown>,
  stream: grpc.ClientWritableStream<unknown>,
  finished: Promise<void>,
): Promise<void> {
  let ended = false;
  void finished.then(() => {
    ended = true;
  });
  try {
    for await (const request of requests) {
      if (ended) return;
      if (!stream.write(request)) await Promise.race([new Promise((resolve) => stream.once("drain", resolve)), finished]);
    }
    if (!ended) stream.end();
  } catch {
    // The caller's iterator failed: abandon the call so the server applies nothing.
    stream.cancel();
  }
}
