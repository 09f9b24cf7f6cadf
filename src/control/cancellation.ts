/**
 * When a call may no longer change anything. A call's AbortSignal aborts on a client cancel or
 * at its deadline, but timers and socket reads only run when the event loop gets a turn, and a
 * transaction's statements can complete one after another without giving it one (replies that
 * are already queued resolve as microtasks; a busy loop runs timers late). So the last check
 * before COMMIT first yields for one poll phase (to read a cancel that has arrived) and compares
 * the deadline with the clock itself.
 */
import { DeadlineExceededError } from "../errors.js";

const deadlines = new WeakMap<AbortSignal, number>();
const reserves = new WeakMap<AbortSignal, number>();

/** Records that `signal` stands for a call that must be done by `at` (ms since the epoch). */
export function setDeadline(signal: AbortSignal, at: number): void {
  deadlines.set(signal, at);
}

/**
 * Makes `signal`'s call commit `ms` before its deadline (replacing an earlier reserve, so a
 * transaction that runs again does not count twice): work the call still has to do after COMMIT
 * and before it answers (entering new users in memory), which could otherwise make its client
 * give up on a change that was applied.
 */
export function reserveAfterCommit(signal: AbortSignal | undefined, ms: number): void {
  if (signal !== undefined) reserves.set(signal, Math.max(0, ms));
}

/** Throws the reason the call is over (cancelled, or past its deadline), if it is. */
export function throwIfOver(signal: AbortSignal | undefined): void {
  if (signal === undefined) return;
  signal.throwIfAborted();
  const at = deadlines.get(signal);
  if (at !== undefined && Date.now() >= at - (reserves.get(signal) ?? 0)) {
    throw new DeadlineExceededError("deadline", "the call's deadline passed before its change committed; nothing was applied");
  }
}

/** Lets the event loop read pending I/O (a cancel on its way in), then throws if the call is over. */
export async function checkpoint(signal: AbortSignal | undefined): Promise<void> {
  if (signal === undefined) return;
  // An immediate scheduled from a callback runs after that loop's poll phase; the second one
  // runs only after the next poll phase has read whatever arrived meanwhile.
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  throwIfOver(signal);
}

/**
 * `promise`, or a rejection with the signal's reason if it aborts first — while `abortable()`
 * holds (a caller may stop waiting for work that has not started, but not for work under way).
 */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal, abortable: () => boolean = () => true): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      if (abortable()) reject(signal.reason);
    };
    if (signal.aborted) onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}
