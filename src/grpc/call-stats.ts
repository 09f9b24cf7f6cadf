/** Counts finished gRPC calls by method and status code, for the metrics endpoint. */
import type * as grpc from "@grpc/grpc-js";

/** Per (method, code) call counters. */
export class CallStats {
  private readonly counts = new Map<string, Map<grpc.status, number>>();

  /** Counts one finished call. */
  record(method: string, code: grpc.status): void {
    let byCode = this.counts.get(method);
    if (byCode === undefined) {
      byCode = new Map();
      this.counts.set(method, byCode);
    }
    byCode.set(code, (byCode.get(code) ?? 0) + 1);
  }

  /** Every counter as [method, code, count]. */
  *entries(): Generator<[string, grpc.status, number]> {
    for (const [method, byCode] of this.counts) for (const [code, count] of byCode) yield [method, code, count];
  }
}
