/** Counts finished gRPC calls by method and status code, for the metrics endpoint. */
import type * as grpc from "@grpc/grpc-js";

/** Per (method, code) call counters. */
export class CallStats {
  // Counts by code (0–16) per method: one Map lookup per call, on a method name the adapter
  // builds once per method (so its hash is computed once), and an array slot rather than a second Map.
  private readonly counts = new Map<string, number[]>();

  /** Counts one finished call. */
  record(method: string, code: grpc.status): void {
    let byCode = this.counts.get(method);
    if (byCode === undefined) {
      byCode = new Array<number>(17).fill(0);
      this.counts.set(method, byCode);
    }
    byCode[code] = (byCode[code] ?? 0) + 1;
  }

  /** Every non-zero counter as [method, code, count]. */
  *entries(): Generator<[string, grpc.status, number]> {
    for (const [method, byCode] of this.counts) {
      for (const [code, count] of byCode.entries()) if (count > 0) yield [method, code as grpc.status, count];
    }
  }
}
