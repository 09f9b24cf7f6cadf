/**
 * OpenTelemetry on the real entry point (issue 13): with OTEL_EXPORTER_OTLP_ENDPOINT pointing at
 * a local collector stub (OTLP/HTTP JSON), one CheckMembership exports one server span with the
 * gRPC attributes, and a write (AddMembers on Postgres) has a child span per SQL statement.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ENTRY, type ServiceProcess, spawnService } from "../../bench/lib/service-process.js";
import { type Client, createClient } from "../../src/client/client.js";
import { MembershipService } from "../../src/gen/segments/v1/membership_service_pb.js";
import { SegmentType } from "../../src/gen/segments/v1/segment_pb.js";
import { SegmentService } from "../../src/gen/segments/v1/segment_service_pb.js";
import { storeKind, type TestStore } from "../support/stores.js";

interface Span {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: { key: string; value: Record<string, unknown> }[];
}

/** A collector stub: every span of every OTLP/HTTP JSON export it receives. */
async function startCollector(): Promise<{ server: Server; url: string; spans: Span[] }> {
  const spans: Span[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const body = JSON.parse(Buffer.concat(chunks).toString()) as { resourceSpans?: { scopeSpans?: { spans?: Span[] }[] }[] };
      for (const resource of body.resourceSpans ?? []) for (const scope of resource.scopeSpans ?? []) spans.push(...(scope.spans ?? []));
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, spans };
}

function attribute(span: Span, key: string): unknown {
  const value = span.attributes.find((a) => a.key === key)?.value;
  return value === undefined ? undefined : Object.values(value)[0];
}

describe("tracing", () => {
  let store: TestStore;
  let collector: Awaited<ReturnType<typeof startCollector>>;
  let main: ServiceProcess;
  let segments: Client<typeof SegmentService>;
  let membership: Client<typeof MembershipService>;

  beforeAll(async () => {
    store = await storeKind("postgres").create();
    collector = await startCollector();
    main = await spawnService(
      {
        ...store.env,
        OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
        OTEL_BSP_SCHEDULE_DELAY: "100",
        SHUTDOWN_GRACE_MS: "500",
        LOG_LEVEL: "debug",
      },
      ENTRY.source,
    );
    segments = createClient(SegmentService, main.address);
    membership = createClient(MembershipService, main.address);
  });
  afterAll(async () => {
    segments.close();
    membership.close();
    await main.stop("SIGKILL");
    collector.server.close();
    await store.drop();
  });

  it("exports one server span per call with the gRPC attributes, and SQL spans under a write", async () => {
    const { segment } = await segments.createSegment({ name: "Traced", type: SegmentType.STATIC });
    const segmentId = segment?.id ?? "";
    await segments.activateSegment({ segmentId });
    await segments.addMembers({ segmentId, userIds: ["alice", "bob"] });
    await membership.checkMembership({ userId: "alice", segmentIds: [segmentId] }, { metadata: { "x-request-id": "trace-test-1" } });
    const named = (suffix: string) => collector.spans.filter((s) => s.kind === 2 && s.name.endsWith(suffix));
    await expect.poll(() => named("MembershipService/CheckMembership").length, { timeout: 10_000 }).toBe(1);
    await expect.poll(() => named("SegmentService/AddMembers").length, { timeout: 10_000 }).toBe(1);

    const check = named("MembershipService/CheckMembership")[0] as Span;
    expect(attribute(check, "rpc.system")).toBe("grpc");
    expect(attribute(check, "rpc.service")).toBe("segments.v1.MembershipService");
    expect(attribute(check, "rpc.method")).toBe("CheckMembership");
    expect(Number(attribute(check, "rpc.grpc.status_code"))).toBe(0);
    // The call's log lines carry its request id and trace id.
    const logged = main.logs.find((l) => l.msg === "call finished" && l.requestId === "trace-test-1");
    expect(logged).toMatchObject({ method: "segments.v1.MembershipService/CheckMembership", traceId: check.traceId });
    // Answered from memory: nothing under it.
    expect(collector.spans.filter((s) => s.parentSpanId === check.spanId)).toEqual([]);

    const add = named("SegmentService/AddMembers")[0] as Span;
    const sql = collector.spans.filter((s) => s.traceId === add.traceId && s.spanId !== add.spanId);
    expect(sql.length).toBeGreaterThan(0);
    // Every one a child of the call's span: the pool checkout, BEGIN, each statement, COMMIT.
    for (const span of sql) {
      expect(attribute(span, "db.system.name")).toBe("postgresql");
      expect(span.parentSpanId).toBe(add.spanId);
    }
    const statements = sql.map((s) => String(attribute(s, "db.query.text") ?? ""));
    expect(statements).toContain("BEGIN");
    expect(statements).toContain("COMMIT");
    expect(statements.some((text) => text.startsWith("INSERT INTO user_chunks"))).toBe(true);
  });

  it("logs that tracing is on", () => {
    expect(main.logs.some((l) => l.msg === "tracing to OTLP")).toBe(true);
  });
});
