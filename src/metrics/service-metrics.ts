/**
 * The service's own measurements off the hot path, as prom-client metrics: evaluations (duration
 * by trigger and outcome, failures by reason), how late scheduled runs start, how long store
 * statements take, and the bytes the change log and snapshots occupy. Recorders are plain
 * functions, so the services that call them need nothing of prom-client.
 */
import { Counter, Gauge, Histogram, type Registry } from "prom-client";

/** What the services report. */
export interface ServiceRecorders {
  /** An evaluation finished: its trigger (MANUAL, SCHEDULE), seconds, and the failure's reason code if it failed. */
  evaluated(trigger: string, seconds: number, failure?: string): void;
  /** A scheduled run started, `seconds` after it was due. */
  scheduleStarted(seconds: number): void;
  /** A store statement (`query`) or a whole transaction (`transaction`) took `seconds`. */
  stored(kind: "query" | "transaction", seconds: number): void;
  /** Bytes held by the change log and by snapshots (tables and indexes), measured by compaction. */
  storage(changeLogBytes: number, snapshotBytes: number): void;
}

/** Registers the metrics with `registry` and returns their recorders; `store` labels the store metrics. */
export function serviceMetrics(registry: Registry, store: string): ServiceRecorders {
  const registers = [registry];
  const evaluation = new Histogram({
    name: "segments_evaluation_duration_seconds",
    help: "Evaluations of dynamic segments, from start to commit or failure.",
    labelNames: ["trigger", "outcome"],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
    registers,
  });
  const failures = new Counter({
    name: "segments_evaluation_failures_total",
    help: "Failed evaluations by reason (the error's google.rpc reason, e.g. DEADLINE_EXCEEDED).",
    labelNames: ["reason"],
    registers,
  });
  const lag = new Histogram({
    name: "segments_schedule_lag_seconds",
    help: "How long after its due time a scheduled evaluation started.",
    buckets: [0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900],
    registers,
  });
  const statements = new Histogram({
    name: "segments_store_query_duration_seconds",
    help: "Store statements and whole transactions.",
    labelNames: ["store", "kind"],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers,
  });
  const changeLog = new Gauge({
    name: "segments_change_log_bytes",
    help: "Bytes of the membership change log (table and indexes).",
    registers,
  });
  const snapshots = new Gauge({ name: "segments_snapshot_bytes", help: "Bytes of membership snapshots (table and indexes).", registers });
  return {
    evaluated(trigger, seconds, failure) {
      evaluation.observe({ trigger, outcome: failure === undefined ? "succeeded" : "failed" }, seconds);
      if (failure !== undefined) failures.inc({ reason: failure });
    },
    scheduleStarted: (seconds) => lag.observe(seconds),
    stored: (kind, seconds) => statements.observe({ store, kind }, seconds),
    storage(changeLogBytes, snapshotBytes) {
      changeLog.set(changeLogBytes);
      snapshots.set(snapshotBytes);
    },
  };
}
