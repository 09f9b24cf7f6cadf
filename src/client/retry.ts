/**
 * When a failed attempt is tried again: only UNAVAILABLE, only for idempotent methods (see
 * method-policy.ts), a bounded number of times, after an exponential backoff with full jitter,
 * or after the server's RetryInfo delay when it gave one, and never past the call's deadline.
 */
import { Code, type SegmentsError } from "./errors.js";

/** How UNAVAILABLE is retried. */
export interface RetryPolicy {
  /** Attempts in all, the first included (1 = never retry). */
  maxAttempts: number;
  /** Upper bound of the first backoff. */
  initialBackoffMs: number;
  /** Upper bound of any backoff the client computes (a server's RetryInfo may ask for longer). */
  maxBackoffMs: number;
  /** Growth of the bound per attempt. */
  multiplier: number;
}

export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = { maxAttempts: 4, initialBackoffMs: 100, maxBackoffMs: 3_000, multiplier: 2 };

/** One retry about to happen, for logs and metrics. */
export interface RetryEvent {
  /** `segments.v1.MembershipService/CheckMembership`. */
  method: string;
  /** The attempt that failed, from 1. */
  attempt: number;
  /** How long the client waits before the next attempt. */
  delayMs: number;
  error: SegmentsError;
}

/** Extra wait on top of a server's RetryInfo delay, as a fraction of it, so retries do not arrive together. */
const RETRY_INFO_JITTER = 0.2;

/**
 * The wait before attempt `attempt + 1`, or undefined to give up: the error is not UNAVAILABLE,
 * the attempts are spent, or the wait would end after `deadline`.
 */
export function retryDelay(
  error: SegmentsError,
  attempt: number,
  policy: RetryPolicy,
  deadline: Date | undefined,
  now: number,
  random: () => number = Math.random,
): number | undefined {
  if (error.code !== Code.UNAVAILABLE || attempt >= policy.maxAttempts) return undefined;
  const delay =
    error.retryDelayMs !== undefined
      ? error.retryDelayMs * (1 + RETRY_INFO_JITTER * random())
      : random() * Math.min(policy.maxBackoffMs, policy.initialBackoffMs * policy.multiplier ** (attempt - 1));
  if (deadline !== undefined && now + delay >= deadline.getTime()) return undefined;
  return Math.round(delay);
}

/** Resolves after `ms`, or rejects at once when `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Checks a policy given by a caller, naming the bad field. */
export function validateRetryPolicy(policy: RetryPolicy): RetryPolicy {
  const { maxAttempts, initialBackoffMs, maxBackoffMs, multiplier } = policy;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1)
    throw new RangeError(`retry.maxAttempts must be an integer ≥ 1, got ${maxAttempts}`);
  for (const [name, value] of Object.entries({ initialBackoffMs, maxBackoffMs })) {
    if (!Number.isFinite(value) || value < 0) throw new RangeError(`retry.${name} must be a finite number ≥ 0, got ${value}`);
  }
  if (!Number.isFinite(multiplier) || multiplier < 1) throw new RangeError(`retry.multiplier must be ≥ 1, got ${multiplier}`);
  return policy;
}
