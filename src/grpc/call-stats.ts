/** Counts finished gRPC calls by method and status code, for the metrics endpoint, and started ones. */
import type * as grpc from "@grpc/grpc-js";

/** The slot after the 17 status codes: calls whose handler started. */
const STARTED = 17;

/** Per (method, code) call counters. */
export class CallStats {
  // Counts by code (0–16) per method: one Map lookup per call, on a method name the adapter
  // builds once per method (so its hash is computed once), and an array slot rather than a second Map.
  private readonly counts = new Map<string, number[]>();

  /** Counts one finished call. */
  record(method: string, code: grpc.status): void {
    const byCode = this.of(method);
    byCode[code] = (byCode[code] ?? 0) + 1;
  }

  /** A counter of `method`'s calls whose handler started, made once per method (no Map lookup per call). */
  starts(method: string): () => void {
    const byCode = this.of(method);
    return () => {
      byCode[STARTED] = (byCode[STARTED] ?? 0) + 1;
    };
  }

  /** Calls of `method` whose handler started. */
  started(method: string): number {
    return this.counts.get(method)?.[STARTED] ?? 0;
  }

  private of(method: string): number[] {
    let byCode = this.counts.get(method);
    if (byCode === undefined) {
      byCode = new Array<number>(STARTED + 1).fill(0);
      this.counts.set(method, byCode);
    }
    return byCode;
  }

  /** Every non-zero counter as [method, code, count]. */
  *entries(): Generator<[string, grpc.status, number]> {
    for (const [method, byCode] of this.counts) {
      for (const [code, count] of byCode.entries()) if (count > 0 && code < STARTED) yield [method, code as grpc.status, count];
    }
  }
}
