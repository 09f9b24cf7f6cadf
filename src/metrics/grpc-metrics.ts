/**
 * gRPC server metrics under the names go-grpc-prometheus made standard (and dashboards expect):
 * grpc_server_started_total, grpc_server_handled_total, grpc_server_handling_seconds,
 * grpc_server_msg_received_total and grpc_server_msg_sent_total, labelled grpc_service,
 * grpc_method, grpc_type (and grpc_code).
 *
 * The counting is ours, in a plain object per method that the adapter holds: a prom-client
 * `inc(labels)` or `observe(labels)` builds a label-hash string on every call, which the
 * membership hot path should not pay. prom-client still does the exposition: each family is a
 * collector whose get() reads the counts at scrape time.
 */
import type * as grpc from "@grpc/grpc-js";
import type { Metric, Registry } from "prom-client";

/** One exposed sample, as prom-client's exposition reads it from a collector's get(). */
interface Sample {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

/** grpc_server_handling_seconds buckets: 100 µs (a membership answer) to a minute (an import). */
export const HANDLING_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** How a method streams, as grpc_type spells it. */
export type GrpcType = "unary" | "client_stream" | "server_stream" | "bidi_stream";

const CODE_NAMES = [
  "OK",
  "Canceled",
  "Unknown",
  "InvalidArgument",
  "DeadlineExceeded",
  "NotFound",
  "AlreadyExists",
  "PermissionDenied",
  "ResourceExhausted",
  "FailedPrecondition",
  "Aborted",
  "OutOfRange",
  "Unimplemented",
  "Internal",
  "Unavailable",
  "DataLoss",
  "Unauthenticated",
];

/** One method's counts; the adapter calls these directly. */
export class MethodMetrics {
  started = 0;
  received = 0;
  sent = 0;
  /** Finished calls by status code (0–16). */
  readonly handled = new Float64Array(17);
  /** Finished calls by the first bucket their duration fits (the last slot: over every bucket). */
  readonly durations = new Float64Array(HANDLING_BUCKETS.length + 1);
  seconds = 0;

  constructor(readonly labels: { grpc_service: string; grpc_method: string; grpc_type: GrpcType }) {}

  /** Counts one finished call. */
  finished(code: grpc.status, seconds: number): void {
    this.handled[code] = (this.handled[code] ?? 0) + 1;
    this.seconds += seconds;
    let bucket = 0;
    while (bucket < HANDLING_BUCKETS.length && seconds > (HANDLING_BUCKETS[bucket] ?? 0)) bucket++;
    this.durations[bucket] = (this.durations[bucket] ?? 0) + 1;
  }
}

/** Every method's counts, and the collectors that expose them. */
export class GrpcMetrics {
  private readonly methods = new Map<string, MethodMetrics>();

  /** The counts of `method` ("package.Service/Method"), made once per method. */
  method(method: string, type: GrpcType): MethodMetrics {
    let found = this.methods.get(method);
    if (found === undefined) {
      const slash = method.lastIndexOf("/");
      found = new MethodMetrics({ grpc_service: method.slice(0, slash), grpc_method: method.slice(slash + 1), grpc_type: type });
      this.methods.set(method, found);
    }
    return found;
  }

  /** Calls of `method` whose handler started. */
  started(method: string): number {
    return this.methods.get(method)?.started ?? 0;
  }

  /** Registers the five families with `registry`. */
  register(registry: Registry): void {
    const all = () => [...this.methods.values()];
    const family = (name: string, help: string, type: "counter" | "histogram", values: () => Sample[]) =>
      // prom-client exposes any registered object with a name and get(); see the header.
      registry.registerMetric({
        name,
        help,
        get: async () => ({ name, help, type, values: values(), aggregator: "sum" }),
      } as unknown as Metric<string>);
    family("grpc_server_started_total", "RPCs started on the server.", "counter", () =>
      all().map((m) => ({ labels: m.labels, value: m.started })),
    );
    family("grpc_server_handled_total", "RPCs completed on the server, by status code.", "counter", () =>
      all().flatMap((m) =>
        [...m.handled.entries()]
          .filter(([, n]) => n > 0)
          .map(([code, n]) => ({ labels: { ...m.labels, grpc_code: CODE_NAMES[code] ?? String(code) }, value: n })),
      ),
    );
    family("grpc_server_handling_seconds", "Time from a handler's start to its answer (seconds).", "histogram", () =>
      all().flatMap(histogram),
    );
    family("grpc_server_msg_received_total", "Stream messages received on the server.", "counter", () =>
      all()
        .filter((m) => m.labels.grpc_type !== "unary")
        .map((m) => ({ labels: m.labels, value: m.received })),
    );
    family("grpc_server_msg_sent_total", "Stream messages sent by the server.", "counter", () =>
      all()
        .filter((m) => m.labels.grpc_type !== "unary")
        .map((m) => ({ labels: m.labels, value: m.sent })),
    );
  }
}

/** A method's histogram samples: cumulative buckets, +Inf, sum and count. */
function histogram(m: MethodMetrics): Sample[] {
  const values: Sample[] = [];
  let cumulative = 0;
  for (const [i, le] of HANDLING_BUCKETS.entries()) {
    cumulative += m.durations[i] ?? 0;
    values.push({ metricName: "grpc_server_handling_seconds_bucket", labels: { ...m.labels, le }, value: cumulative });
  }
  cumulative += m.durations[HANDLING_BUCKETS.length] ?? 0;
  values.push({ metricName: "grpc_server_handling_seconds_bucket", labels: { ...m.labels, le: "+Inf" }, value: cumulative });
  values.push({ metricName: "grpc_server_handling_seconds_sum", labels: m.labels, value: m.seconds });
  values.push({ metricName: "grpc_server_handling_seconds_count", labels: m.labels, value: cumulative });
  return values;
}
