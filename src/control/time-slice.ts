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
 */

/** Longest stretch of synchronous work between turns of the event loop, in ms. */
export const SLICE_MS = 1;
/** A gap this long between two checks means nothing ran: the stretch starts again. */
const AWAY_MS = 4 * SLICE_MS;

let stretchStart = 0;
let lastCheck = 0;

/** Whether the current stretch of synchronous work has used its slice. */
export function sliceDue(): boolean {
  const now = performance.now();
  if (now - lastCheck > AWAY_MS) stretchStart = now;
  lastCheck = now;
  return now - stretchStart >= SLICE_MS;
}

/** Gives the event loop one turn (after its poll phase, so waiting I/O runs), then starts a new slice. */
export async function nextSlice(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  stretchStart = lastCheck = performance.now();
}
