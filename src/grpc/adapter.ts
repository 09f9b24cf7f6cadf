/**
 * Serves protobuf-es service descriptors through @grpc/grpc-js. Handlers are typed from the
 * generated descriptors, so a missing or mistyped method is a compile error; every call gets a
 * request id, a lazily built logger, an abort signal, and one error → status mapping.
 */
import { randomUUID } from "node:crypto";
import {
  create,
  type DescMessage,
  type DescMethod,
  type DescService,
  type MessageInitShape,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import * as grpc from "@grpc/grpc-js";
import { trace } from "@opentelemetry/api";
import type { Logger } from "pino";
import { type Identity, UNAUTHENTICATED } from "../auth/authenticator.js";
import { setDeadline } from "../control/cancellation.js";
import { CancelledError, DeadlineExceededError, ResourceExhaustedError } from "../errors.js";
import type { GrpcType, MethodMetrics } from "../metrics/grpc-metrics.js";
import { type FastDecoder, type Precheck, RejectedRequest, safeDeserializer } from "./request-decoding.js";
import { toStatus } from "./status.js";
import { readStream, type StreamLimits } from "./stream-reader.js";

/**
 * A change must commit this long before the call's deadline: the client's timer starts before
 * ours (the request is in flight meanwhile), so a commit just inside our deadline could land
 * just outside the client's, which would then report a failure for an applied change.
 */
const DEADLINE_MARGIN_MS = 50;

/** What a handler knows about its call besides the request. */
export interface CallContext {
  readonly requestId: string;
  readonly method: string;
  readonly metadata: grpc.Metadata;
  /**
   * Aborted when the client cancels or the call's deadline (less a safety margin) passes; its
   * reason is the CancelledError or DeadlineExceededError to answer with. Created on first use.
   */
  readonly signal: AbortSignal;
  /** A child logger carrying the request id and method (built on first use). */
  readonly log: Logger;
  /** Who is calling (UNAUTHENTICATED while authentication is off, and on open services). */
  readonly identity: Identity;
}

type Unary<I extends DescMessage, O extends DescMessage> = (
  request: MessageShape<I>,
  ctx: CallContext,
) => Promise<MessageInitShape<O> | EncodedMessage> | MessageInitShape<O> | EncodedMessage;
/**
 * A response a handler encoded itself (a hot path that knows a faster way than protobuf-es):
 * the serializer sends its bytes as they are.
 */
export class EncodedMessage {
  constructor(readonly bytes: Uint8Array) {}
}

type ServerStreaming<I extends DescMessage, O extends DescMessage> = (
  request: MessageShape<I>,
  send: (message: MessageInitShape<O> | EncodedMessage) => Promise<void>,
  ctx: CallContext,
) => Promise<void>;
type ClientStreaming<I extends DescMessage, O extends DescMessage> = (
  requests: AsyncIterable<MessageShape<I>>,
  ctx: CallContext,
) => Promise<MessageInitShape<O>>;

/** The handler shape for one method, by its kind. */
export type MethodHandler<M> = M extends { methodKind: "unary"; input: infer I extends DescMessage; output: infer O extends DescMessage }
  ? Unary<I, O>
  : M extends { methodKind: "server_streaming"; input: infer I extends DescMessage; output: infer O extends DescMessage }
    ? ServerStreaming<I, O>
    : M extends { methodKind: "client_streaming"; input: infer I extends DescMessage; output: infer O extends DescMessage }
      ? ClientStreaming<I, O>
      : never;

/** Every method of a generated service, each with its handler. */
export type ServiceHandlers<S> = S extends GenService<infer R extends GenServiceMethods> ? { [K in keyof R]: MethodHandler<R[K]> } : never;

/** Called once per finished call: for logs and metrics. */
export type CallObserver = (code: grpc.status, durationMs: number, ctx: CallContext, error?: unknown) => void;

/** Options shared by every service served through the adapter. */
export interface AdapterOptions {
  log: Logger;
  observe: CallObserver;
  /**
   * Per method ("service/Method"), fetched once: where its calls are counted (started — a call
   * cancelled before its request arrived never starts, nor finishes —, finished by code and
   * duration, stream messages). Undefined: calls are not counted.
   */
  metrics?: (method: string, type: GrpcType) => MethodMetrics;
  /** Idle and duration limits of client streams (and of a server stream waiting for its reader). */
  streams: StreamLimits;
  /** Raw-byte checks by method ("segments.v1.SegmentService/AddMembers"), run before decoding. */
  prechecks?: Readonly<Record<string, Precheck>>;
  /** Request decoders by method that bypass protobuf-es for the messages they accept (after the precheck). */
  decoders?: Readonly<Record<string, FastDecoder>>;
  /**
   * Per method ("service/Method"), built once: the check that turns the call's `authorization`
   * metadata into its identity or throws (UNAUTHENTICATED, PERMISSION_DENIED) before the request
   * is looked at. Undefined (or returning undefined) for methods open to anyone.
   */
  authorize?: (method: string) => ((authorization: unknown) => Identity) | undefined;
}

/** Adds `service`, implemented by `handlers`, to `server`. */
export function addService<S extends DescService>(
  server: grpc.Server,
  service: S,
  handlers: ServiceHandlers<S>,
  options: AdapterOptions,
): void {
  const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  const implementation: grpc.UntypedServiceImplementation = {};
  const byLocalName = handlers as unknown as Record<string, (...args: never[]) => unknown>;
  for (const method of service.methods) {
    const handler = byLocalName[method.localName];
    if (handler === undefined) throw new Error(`no handler for ${service.typeName}.${method.name}`);
    const key = `${service.typeName}/${method.name}`;
    definition[method.name] = methodDefinition(method, options.prechecks?.[key], options.decoders?.[key]);
    implementation[method.name] = wrap(method, handler, options);
  }
  server.addService(definition, implementation);
}

function methodDefinition(
  method: DescMethod,
  precheck: Precheck | undefined,
  decoder: FastDecoder | undefined,
): grpc.MethodDefinition<unknown, unknown> {
  return {
    path: `/${method.parent.typeName}/${method.name}`,
    requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
    responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
    requestSerialize: serializer(method.input),
    requestDeserialize: safeDeserializer(method.input, precheck, decoder),
    responseSerialize: serializer(method.output),
    responseDeserialize: safeDeserializer(method.output),
    originalName: method.localName,
  };
}

function serializer(schema: DescMessage): (message: unknown) => Buffer {
  return (message) => {
    const bytes =
      message instanceof EncodedMessage ? message.bytes : toBinary(schema, create(schema, message as MessageInitShape<DescMessage>));
    // grpc-js wants a Buffer; wrap the encoded bytes without copying them (hand encoders already write one).
    return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

type AnyCall =
  | grpc.ServerUnaryCall<unknown, unknown>
  | grpc.ServerReadableStream<unknown, unknown>
  | grpc.ServerWritableStream<unknown, unknown>;

/**
 * A call's context. Request id, logger and abort signal are built on first use, and the getters
 * live on the prototype: a call that needs none of them (the hot path) costs one small object.
 */
class Context implements CallContext {
  identity: Identity = UNAUTHENTICATED;
  private id: string | undefined;
  private logger: Logger | undefined;
  private aborts: AbortSignal | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly method: string,
    private readonly call: AnyCall,
    private readonly baseLog: Logger,
  ) {}

  get metadata(): grpc.Metadata {
    return this.call.metadata;
  }

  get requestId(): string {
    if (this.id === undefined) {
      const given = this.call.metadata.get("x-request-id")[0];
      this.id = typeof given === "string" && given.length > 0 && given.length <= 128 ? given : randomUUID();
    }
    return this.id;
  }

  get signal(): AbortSignal {
    if (this.aborts === undefined) {
      const controller = new AbortController();
      const cancelled = () => controller.abort(new CancelledError("the client cancelled the call; nothing was applied"));
      if (this.call.cancelled) cancelled();
      else (this.call as grpc.ServerUnaryCall<unknown, unknown>).on("cancelled", cancelled);
      this.timer = deadlineTimer(this.call, controller);
      this.aborts = controller.signal;
    }
    return this.aborts;
  }

  get log(): Logger {
    if (this.logger === undefined) {
      // With tracing on, the active span is the call's server span (its context follows the awaits).
      const traceId = trace.getActiveSpan()?.spanContext().traceId;
      this.logger = this.baseLog.child({
        requestId: this.requestId,
        method: this.method,
        ...(traceId === undefined ? {} : { traceId }),
        ...(this.identity.authenticated ? { caller: this.identity.auditName } : {}),
      });
    }
    return this.logger;
  }

  /** Stops the deadline timer, if the signal started one, once the call is answered. */
  dispose(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
  }
}

/**
 * Sends the client's `x-request-id` back in the response headers, so a client can match an answer
 * to the server's log lines. A call without one gets an id of the server's, which only failures
 * report (google.rpc.ErrorInfo metadata), so the hot path does not pay for headers nobody asked for.
 */
function echoRequestId(call: AnyCall): void {
  const given = call.metadata.get("x-request-id")[0];
  if (typeof given !== "string" || given.length === 0 || given.length > 128) return;
  const headers = new grpc.Metadata();
  headers.set("x-request-id", given);
  call.sendMetadata(headers);
}

/** Aborts `controller` DEADLINE_MARGIN_MS before the call's deadline, if it has one. */
function deadlineTimer(call: AnyCall, controller: AbortController): NodeJS.Timeout | undefined {
  const deadline = call.getDeadline();
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  if (!Number.isFinite(at)) return undefined;
  setDeadline(controller.signal, at - DEADLINE_MARGIN_MS);
  const timer = setTimeout(
    () =>
      controller.abort(
        new DeadlineExceededError("deadline", "the call's deadline passed before its change committed; nothing was applied"),
      ),
    Math.max(0, at - DEADLINE_MARGIN_MS - Date.now()),
  );
  timer.unref();
  return timer;
}

function wrap(method: DescMethod, handler: (...args: never[]) => unknown, options: AdapterOptions): grpc.UntypedHandleCall {
  // Built once per method: the metrics key, and what every call of it shares.
  const name = `${method.parent.typeName}/${method.name}`;
  const { log, observe } = options;
  const counts = options.metrics?.(name, GRPC_TYPES[method.methodKind]);
  const guard = options.authorize?.(name);
  // Who is calling, before anything else about the call: a refused caller learns nothing more.
  const authorize =
    guard === undefined
      ? undefined
      : (ctx: Context, call: AnyCall) => {
          ctx.identity = guard(call.metadata.get("authorization")[0]);
        };
  const finish = (ctx: Context, started: number, error?: unknown): Partial<grpc.StatusObject> | undefined => {
    ctx.dispose();
    const status = error === undefined ? undefined : toStatus(error, ctx.requestId);
    const durationMs = performance.now() - started;
    const code = status?.code ?? grpc.status.OK;
    counts?.finished(code, durationMs / 1000);
    observe(code, durationMs, ctx, error);
    return status;
  };
  const call = handler as (...args: unknown[]) => unknown;
  switch (method.methodKind) {
    case "unary":
      // No promise unless the handler returns one: the membership reads answer synchronously.
      return (unary: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        if (counts !== undefined) counts.started++;
        echoRequestId(unary);
        const started = performance.now();
        const ctx = new Context(name, unary, log);
        let response: unknown;
        try {
          authorize?.(ctx, unary);
          response = call(accepted(unary.request), ctx);
        } catch (error: unknown) {
          callback(finish(ctx, started, error) as grpc.ServerErrorResponse);
          return;
        }
        if (!isPromiseLike(response)) {
          finish(ctx, started);
          callback(null, response);
          return;
        }
        response.then(
          (settled) => {
            finish(ctx, started);
            callback(null, settled);
          },
          (error: unknown) => callback(finish(ctx, started, error) as grpc.ServerErrorResponse),
        );
      };
    case "client_streaming":
      return (stream: grpc.ServerReadableStream<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        if (counts !== undefined) counts.started++;
        echoRequestId(stream);
        const startedAt = performance.now();
        const ctx = new Context(name, stream, log);
        settle(() => {
          authorize?.(ctx, stream);
          return call(readStream(stream, ctx.signal, options.streams, startedAt, counts), ctx);
        }).then(
          (response) => {
            finish(ctx, startedAt);
            callback(null, response);
          },
          (error: unknown) => callback(finish(ctx, startedAt, error) as grpc.ServerErrorResponse),
        );
      };
    case "server_streaming":
      return (stream: grpc.ServerWritableStream<unknown, unknown>) => {
        if (counts !== undefined) counts.started++;
        echoRequestId(stream);
        const started = performance.now();
        const ctx = new Context(name, stream, log);
        settle(() => {
          authorize?.(ctx, stream);
          return call(accepted(stream.request), sender(stream, ctx.signal, options.streams.idleMs, counts), ctx);
        }).then(
          () => {
            finish(ctx, started);
            stream.end();
          },
          (error: unknown) => stream.emit("error", finish(ctx, started, error)),
        );
      };
    default:
      throw new Error(`${method.methodKind} methods are not supported (${method.parent.typeName}.${method.name})`);
  }
}

const GRPC_TYPES: Record<DescMethod["methodKind"], GrpcType> = {
  unary: "unary",
  client_streaming: "client_stream",
  server_streaming: "server_stream",
  bidi_streaming: "bidi_stream",
};

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | undefined)?.then === "function";
}

/** The decoded request, or the reason it was refused (thrown, so the call answers with it). */
function accepted(request: unknown): unknown {
  if (request instanceof RejectedRequest) throw request.error;
  return request;
}

/** Runs `fn`, turning a synchronous throw into a rejection. */
function settle(fn: () => unknown): Promise<unknown> {
  try {
    return Promise.resolve(fn());
  } catch (error: unknown) {
    return Promise.reject(error);
  }
}

/**
 * A send function that honours backpressure: it resolves once the stream can take more, and
 * fails the call when the reader takes nothing for `idleMs` (a stalled reader must not pin the
 * stream's state forever).
 */
function sender(
  stream: grpc.ServerWritableStream<unknown, unknown>,
  signal: AbortSignal,
  idleMs: number,
  counts: MethodMetrics | undefined,
): (message: unknown) => Promise<void> {
  return (message) =>
    new Promise<void>((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      if (counts !== undefined) counts.sent++;
      if (stream.write(message)) return resolve();
      const done = () => {
        clearTimeout(timer);
        stream.removeListener("drain", onDrain);
        signal.removeEventListener("abort", onAbort);
      };
      const onDrain = () => {
        done();
        resolve();
      };
      const onAbort = () => {
        done();
        reject(signal.reason);
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new ResourceExhaustedError("STREAM_IDLE_MS", `the reader took nothing for ${idleMs} ms (STREAM_IDLE_MS); the stream was closed`),
        );
      }, idleMs);
      stream.once("drain", onDrain);
      signal.addEventListener("abort", onAbort, { once: true });
    });
}
