/** Waiting for the in-process server to finish calls a client has already given up on. */
import type { TestService } from "./service.js";

/** How many calls of `method` ("segments.v1.SegmentService/AddMembers") the server has finished. */
export function finishedCalls(service: TestService, method: string): number {
  let total = 0;
  for (const count of service.app.server.metrics.method(method, "unary").handled) total += count;
  return total;
}

/**
 * Resolves once the server has finished `count` calls of `method`, or has none of them running: a
 * client that cancelled or timed out learns of it before the server stops working on the call,
 * and only then is the state final. A call whose deadline passed before its request had arrived
 * never reaches a handler, so it never finishes either (and can change nothing).
 */
export async function untilFinished(service: TestService, method: string, count: number): Promise<void> {
  const running = () => service.app.server.metrics.started(method) > finishedCalls(service, method);
  for (let waited = 0; finishedCalls(service, method) < count && running(); waited += 20) {
    if (waited > 120_000) throw new Error(`the server finished ${finishedCalls(service, method)} of ${count} ${method} calls`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
