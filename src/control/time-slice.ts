/**
 * Slicing long synchronous work so the event loop keeps answering (DESIGN.md "Threads"). A loop
 * over a large input (a query result's ids, an import's lines) asks `sliceDue()` every few hundred
 * items and, when it says so, awaits `nextSlice()`: one turn of the event loop (timers, socket
 * reads, other calls) before the next slice. Await only when due: a pending promise per item would
 * cost more than the work.
 *
 * The clock is shared by every loop in the process, so a chain of loops handing work to one
 * another in microtasks (a stream reader feeding a resolver) is one stretch of work, bounded as a
 * whole. A loop that resumes after waiting on I/O starts a new stretch: when no loop has asked
 * for a while, the event loop has been free meanwhile.
 *
 * Sliced work is background work (evaluations, imports); membership answers are the foreground.
 * While foreground calls are arriving, a slice is followed by a rest (REST_SHARE times as long as
 * the slice), not just one turn: on a machine whose cores the service and its Postgres backend
 * would otherwise keep busy between them, the process is descheduled for milliseconds at a time
 * and every answer waiting on it pays. Resting also pauses the socket a COPY is read from, so the
 * backend producing it waits too. Alone, background work runs at full speed.
 */

/** Longest stretch of synchronous work between turns of the event loop, in ms. */
export const SLICE_MS = 1;
/** A gap this long between two checks means nothing ran: the stretch starts again. */
const AWAY_MS = 4 * SLICE_MS;

/** How recently a foreground call must have arrived for background work to rest between slices, in ms. */
const FOREGROUND_RECENT_MS = 100;
/**
 * While foreground calls arrive, rest this many times as long as the slice just worked (a quarter
 * of the time for background work). Bench `evaluate`, 10M users on Postgres, one run each: rest
 * 0 → CheckMembership p99 3.37× idle (p50 6.5×); rest 1 → 2.1× (3.2×); rest 3 → 2.0× (1.5×).
 */
const REST_SHARE = 3;

let stretchStart = 0;
let lastCheck = 0;
/** Foreground calls so far, and the count and time when `nextSlice` last saw it change. */
let foregroundCalls = 0;
let seenForegroundCalls = 0;
let foregroundSeenAt = Number.NEGATIVE_INFINITY;

/** Counts a foreground call (a membership answer): one increment, so the hot path pays nothing more. */
export function noteForeground(): void {
  foregroundCalls++;
}

/** Whether the current stretch of synchronous work has used its slice. */
export function sliceDue(): boolean {
  const now = performance.now();
  if (now - lastCheck > AWAY_MS) stretchStart = now;
  lastCheck = now;
  return now - stretchStart >= SLICE_MS;
}

/**
 * Gives the event loop one turn (after its poll phase, so waiting I/O runs), then starts a new
 * slice; while foreground calls are arriving, first rests REST_SHARE times as long as the slice worked.
 */
export async function nextSlice(): Promise<void> {
  const now = performance.now();
  if (foregroundCalls !== seenForegroundCalls) {
    seenForegroundCalls = foregroundCalls;
    foregroundSeenAt = now;
  }
  const rest = now - foregroundSeenAt < FOREGROUND_RECENT_MS ? (now - stretchStart) * REST_SHARE : 0;
  await new Promise((resolve) => (rest >= 1 ? setTimeout(resolve, rest) : setImmediate(resolve)));
  stretchStart = lastCheck = performance.now();
}
