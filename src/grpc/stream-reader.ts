/**
 * Reading a client stream so that a handler can trust what it sees: a stream that ends is a
 * stream the client finished (not one it reset), a silent client cannot hold the call (and the
 * locks or connections behind it) forever, and no stream outlives its maximum duration.
 */
import * as grpc from "@grpc/grpc-js";
import { checkpoint } from "../control/cancellation.js";
import { CancelledError, DeadlineExceededError, ResourceExhaustedError } from "../errors.js";
import { RejectedRequest } from "./request-decoding.js";

/** How long client streams may idle and last. */
export interface StreamLimits {
  /** Longest wait for the next message (or the end). */
  idleMs: number;
  /** Longest time from the call's start to the end of its stream. */
  maxMs: number;
}

/** The messages of `stream`, ended only by a real half-close; throws the reason a stream must not count. */
export async function* readStream<T>(
  stream: grpc.ServerReadableStream<unknown, unknown>,
  signal: AbortSignal,
  limits: StreamLimits,
  startedAt: number,
  counts?: { received: number },
): AsyncGenerator<T> {
  const iterator = stream[Symbol.asyncIterator]();
  for (;;) {
    let result: IteratorResult<unknown>;
    try {
      result = await nextWithin(iterator, signal, limits, startedAt);
    } catch (error: unknown) {
      // A destroyed stream errors its iterator; the cause is the cancellation, not a fault.
      throw signal.aborted ? signal.reason : error;
    }
    if (result.done === true) {
      await confirmEnd(stream, signal);
      return;
    }
    if (counts !== undefined) counts.received++;
    if (result.value instanceof RejectedRequest) throw result.value.error;
    yield result.value as T;
  }
}

/** The iterator's next result, unless the idle limit, the maximum duration or the signal comes first. */
function nextWithin(
  iterator: AsyncIterator<unknown>,
  signal: AbortSignal,
  limits: StreamLimits,
  startedAt: number,
): Promise<IteratorResult<unknown>> {
  if (signal.aborted) return Promise.reject(signal.reason);
  const next = iterator.next();
  // The loser of the race below may reject later (the stream is destroyed when the call ends).
  next.catch(() => undefined);
  const remaining = limits.maxMs - (performance.now() - startedAt);
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const limit = new Promise<never>((_, reject) => {
    const idle = remaining > limits.idleMs;
    timer = setTimeout(
      () =>
        reject(
          idle
            ? new ResourceExhaustedError(
                "STREAM_IDLE_MS",
                `no message arrived for ${limits.idleMs} ms (STREAM_IDLE_MS); the stream was closed and nothing was applied`,
              )
            : new DeadlineExceededError(
                "STREAM_MAX_MS",
                `the stream stayed open longer than ${limits.maxMs} ms (STREAM_MAX_MS); nothing was applied: split the work into several calls`,
              ),
        ),
      Math.max(0, idle ? limits.idleMs : remaining),
    );
    onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
  });
  return Promise.race([next, limit]).finally(() => {
    clearTimeout(timer);
    if (onAbort !== undefined) signal.removeEventListener("abort", onAbort);
  });
}

/**
 * How long an ended stream waits for a reset before it counts as finished. A cancelling grpc-js
 * client ends its side of the stream (END_STREAM) and sends RST_STREAM right after, so the end
 * of a cancelled stream arrives first; this grace lets the reset that follows catch up.
 */
const END_GRACE_MS = 5;

/**
 * Confirms that an ended stream was finished, not reset. Asking to send headers makes grpc-js
 * look at the HTTP/2 stream now; a reset one is then reported cancelled within a tick.
 */
async function confirmEnd(stream: grpc.ServerReadableStream<unknown, unknown>, signal: AbortSignal): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, END_GRACE_MS));
  stream.sendMetadata(new grpc.Metadata());
  await checkpoint(signal);
  if (stream.cancelled) throw new CancelledError("the client cancelled the stream; nothing was applied");
}
