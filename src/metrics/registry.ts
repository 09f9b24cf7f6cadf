/**
 * What /metrics exposes, through prom-client: the default process and Node.js metrics (event-loop
 * lag included), the standard gRPC server families (grpc-metrics.ts) and the service's own gauges,
 * read from the in-memory state at scrape time. Nothing here names a user.
 */
import { collectDefaultMetrics, Gauge, Registry } from "prom-client";
import type { SegmentState } from "../service/segment-state.js";
import type { GrpcMetrics } from "./grpc-metrics.js";

/** Segments listed one by one in segments_segment_members; the rest only count in the total. */
export const TOP_SEGMENTS = 20;

/** Where the gauges read from; `state` is a getter (empty while loading, then the loaded state). */
export interface MetricSources {
  readonly state: SegmentState;
  grpc: GrpcMetrics;
}

/** A registry with every metric the service exposes. */
export function createRegistry(sources: MetricSources): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  sources.grpc.register(registry);
  const registers = [registry];
  new Gauge({
    name: "segments_segments",
    help: "Segments by type and status.",
    labelNames: ["type", "status"],
    registers,
    collect() {
      this.reset();
      for (const segment of sources.state.segments.values()) this.inc({ type: segment.type, status: segment.status });
    },
  });
  new Gauge({
    name: "segments_members",
    help: "Members across STATIC and DYNAMIC segments.",
    registers,
    collect() {
      let members = 0;
      for (const segment of sources.state.segments.values()) if (segment.type !== "EVERYONE") members += segment.memberCount;
      this.set(members);
    },
  });
  new Gauge({
    name: "segments_segment_members",
    help: `Members of the ${TOP_SEGMENTS} largest STATIC and DYNAMIC segments (bounded cardinality: the rest are only in segments_members).`,
    labelNames: ["segment_id"],
    registers,
    collect() {
      this.reset();
      const sized = [...sources.state.segments.values()].filter((s) => s.type !== "EVERYONE");
      sized.sort((a, b) => b.memberCount - a.memberCount);
      for (const segment of sized.slice(0, TOP_SEGMENTS)) this.set({ segment_id: segment.id }, segment.memberCount);
    },
  });
  new Gauge({
    name: "segments_users",
    help: "Users in the directory.",
    registers,
    collect() {
      this.set(sources.state.directory.size);
    },
  });
  new Gauge({
    name: "segments_bitmap_bytes",
    help: "Serialized size of all membership bitmaps.",
    registers,
    collect() {
      this.set(sources.state.bitmaps.sizeInBytes());
    },
  });
  new Gauge({
    name: "segments_member_filter_bytes",
    help: "Bytes of the member filters that batch checks of small segments use (made on first use, 64 MiB at most).",
    registers,
    collect() {
      this.set(sources.state.filters.byteSize);
    },
  });
  return registry;
}
