/**
 * The HTTP side port: `/healthz` for orchestrators and `/metrics` in Prometheus text format.
 * Both read in-memory state only, so they answer even when the database is down.
 */
import { createServer, type RequestListener, type Server } from "node:http";
import { createServer as createTlsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { status as grpcStatus } from "@grpc/grpc-js";
import type { CallStats } from "../grpc/call-stats.js";
import type { HealthState } from "../grpc/health.js";
import { SEGMENT_STATUSES } from "../model.js";
import type { SegmentState } from "../service/segment-state.js";
import type { CertificateFiles } from "../tls/certificates.js";

/** What the endpoints report on. */
export interface HttpServerDeps {
  state: SegmentState;
  health: HealthState;
  calls: CallStats;
}

/**
 * Starts the HTTP server, over TLS when `certificates` are given (new connections get reloaded
 * ones); resolves to it and its bound port.
 */
export async function startHttpServer(
  deps: HttpServerDeps,
  host: string,
  port: number,
  certificates?: CertificateFiles,
): Promise<{ server: Server; port: number }> {
  const handler: RequestListener = (req, res) => {
    if (req.method === "GET" && req.url === "/healthz") {
      const serving = deps.health.isServing();
      res.writeHead(serving ? 200 : 503, { "content-type": "text/plain" }).end(serving ? "ok\n" : "not serving\n");
    } else if (req.method === "GET" && req.url === "/metrics") {
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4" }).end(renderMetrics(deps));
    } else {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found; try /healthz or /metrics\n");
    }
  };
  let server: Server;
  if (certificates === undefined) server = createServer(handler);
  else {
    const tls = createTlsServer(certificates.secureContextOptions(), handler);
    certificates.onReload(() => tls.setSecureContext(certificates.secureContextOptions()));
    server = tls;
  }
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  return { server, port: (server.address() as AddressInfo).port };
}

/** The Prometheus exposition of the service's state. */
export function renderMetrics({ state, calls }: HttpServerDeps): string {
  const lines: string[] = [];
  const metric = (name: string, type: string, help: string, samples: [string, number][]) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) lines.push(`${name}${labels} ${value}`);
  };
  const byStatus = new Map(SEGMENT_STATUSES.map((s) => [s, 0]));
  let members = 0;
  for (const segment of state.segments.values()) {
    byStatus.set(segment.status, (byStatus.get(segment.status) ?? 0) + 1);
    if (segment.type !== "EVERYONE") members += segment.memberCount;
  }
  metric(
    "segments_segments",
    "gauge",
    "Segments by status.",
    [...byStatus].map(([s, n]) => [`{status="${s}"}`, n]),
  );
  metric("segments_members", "gauge", "Members across STATIC and DYNAMIC segments.", [["", members]]);
  metric("segments_users", "gauge", "Users in the directory.", [["", state.directory.size]]);
  metric("segments_bitmap_bytes", "gauge", "Serialized size of all membership bitmaps.", [["", state.bitmaps.sizeInBytes()]]);
  const memory = process.memoryUsage();
  metric("process_resident_memory_bytes", "gauge", "Resident set size.", [["", memory.rss]]);
  metric("nodejs_heap_used_bytes", "gauge", "V8 heap in use.", [["", memory.heapUsed]]);
  metric(
    "segments_grpc_calls_total",
    "counter",
    "Finished gRPC calls by method and status code.",
    [...calls.entries()].map(([method, code, n]) => [`{method="${method}",code="${grpcStatus[code]}"}`, n]),
  );
  return `${lines.join("\n")}\n`;
}
