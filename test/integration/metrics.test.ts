/**
 * /metrics and /readyz of a real server (issue 13): after known calls the standard gRPC families
 * hold exactly those counts; the default Node.js metrics and our gauges are there; /readyz turns
 * 503 while the store does not answer, /healthz does not.
 */
import * as grpc from "@grpc/grpc-js";
import { status as code } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SegmentType } from "../../src/gen/segments/v1/segment_pb.js";
import { ImportMode } from "../../src/gen/segments/v1/segment_service_pb.js";
import { startService, type TestService } from "../support/service.js";
import { failure } from "../support/status.js";
import { storeKind, type TestStore } from "../support/stores.js";
import { startProxy, type TcpProxy } from "../support/tcp-proxy.js";

describe("metrics and readiness (postgres)", () => {
  let store: TestStore;
  let proxy: TcpProxy;
  let service: TestService;
  const scrape = async (path = "/metrics") => fetch(`http://127.0.0.1:${service.app.httpPort}${path}`);
  const samples = async () => {
    const text = await (await scrape()).text();
    return new Map(
      text
        .split("\n")
        .filter((l) => l !== "" && !l.startsWith("#"))
        .map((l) => [l.slice(0, l.lastIndexOf(" ")), Number(l.slice(l.lastIndexOf(" ") + 1))]),
    );
  };

  beforeAll(async () => {
    store = await storeKind("postgres").create();
    const url = new URL(store.env.DATABASE_URL ?? "");
    proxy = await startProxy(url.hostname, Number(url.port || 5432));
    url.host = `127.0.0.1:${proxy.port}`;
    service = await startService(store, {
      DATABASE_URL: url.toString(),
      DB_LOCK_TIMEOUT_MS: "500",
      DB_STATEMENT_TIMEOUT_MS: "1000",
      QUERY_ROW_CAP: "100",
      COMPACTION_INTERVAL_MS: "200",
    });
  });
  afterAll(async () => {
    proxy.thaw();
    await service.stop();
    await proxy.close();
    await store.drop();
  });

  it("counts known calls exactly under the standard gRPC names, with their durations", async () => {
    const { segment } = await service.segments.createSegment({ name: "Metered", type: SegmentType.STATIC });
    const segmentId = segment?.id ?? "";
    await service.segments.activateSegment({ segmentId });
    await service.segments.importMembers([
      { segmentId, mode: ImportMode.ADD, userIds: ["a", "b"] },
      { userIds: ["c"] },
      { userIds: ["d"] },
    ]);
    for (const userId of ["a", "b", "z"]) await service.membership.checkMembership({ userId, segmentIds: [segmentId] });
    expect((await failure(service.membership.checkMembership({ userId: "", segmentIds: [segmentId] }))).code).toBe(code.INVALID_ARGUMENT);
    let batches = 0;
    for await (const _ of service.membership.streamAudience({ includeSegmentIds: [segmentId], batchSize: 2 })) batches++;

    const m = await samples();
    const check = 'grpc_service="segments.v1.MembershipService",grpc_method="CheckMembership",grpc_type="unary"';
    expect(m.get(`grpc_server_started_total{${check}}`)).toBe(4);
    expect(m.get(`grpc_server_handled_total{${check},grpc_code="OK"}`)).toBe(3);
    expect(m.get(`grpc_server_handled_total{${check},grpc_code="InvalidArgument"}`)).toBe(1);
    expect(m.get(`grpc_server_handling_seconds_count{${check}}`)).toBe(4);
    expect(m.get(`grpc_server_handling_seconds_bucket{${check},le="+Inf"}`)).toBe(4);
    // Answered from memory: every check within a second.
    expect(m.get(`grpc_server_handling_seconds_bucket{${check},le="1"}`)).toBe(4);
    const importLabels = 'grpc_service="segments.v1.SegmentService",grpc_method="ImportMembers",grpc_type="client_stream"';
    expect(m.get(`grpc_server_msg_received_total{${importLabels}}`)).toBe(3);
    expect(m.get(`grpc_server_handled_total{${importLabels},grpc_code="OK"}`)).toBe(1);
    const stream = 'grpc_service="segments.v1.MembershipService",grpc_method="StreamAudience",grpc_type="server_stream"';
    expect(m.get(`grpc_server_msg_sent_total{${stream}}`)).toBe(batches);
    expect(batches).toBe(2);
    // Ours and the defaults.
    expect(m.get("segments_users")).toBe(4);
    expect(m.get("segments_members")).toBe(4);
    expect(m.get(`segments_segment_members{segment_id="${segmentId}"}`)).toBe(4);
    expect(m.get('segments_segments{type="STATIC",status="ACTIVE"}')).toBe(1);
    expect(m.get("process_resident_memory_bytes")).toBeGreaterThan(0);
    expect([...m.keys()].some((k) => k.startsWith("nodejs_eventloop_lag_seconds"))).toBe(true);
  });

  it("measures evaluations by outcome and reason, store statements, and the change log's size", async () => {
    const make = async (name: string, sql: string) => {
      const { segment } = await service.segments.createSegment({
        name,
        type: SegmentType.DYNAMIC,
        query: { kind: { case: "sql", value: sql } },
      });
      await service.segments.activateSegment({ segmentId: segment?.id ?? "" });
      return segment?.id ?? "";
    };
    const good = await make("Evaluated", "SELECT 'e' || g AS user_id FROM generate_series(1, 3) g");
    const bad = await make("Fails", "SELECT 'x' || g AS user_id FROM generate_series(1, 1000) g");
    await service.segments.evaluateSegment({ segmentId: good });
    // Over QUERY_ROW_CAP (100 in this service): RESOURCE_EXHAUSTED.
    expect((await failure(service.segments.evaluateSegment({ segmentId: bad }))).code).toBe(code.RESOURCE_EXHAUSTED);
    const m = await samples();
    expect(m.get('segments_evaluation_duration_seconds_count{trigger="MANUAL",outcome="succeeded"}')).toBe(1);
    expect(m.get('segments_evaluation_duration_seconds_count{trigger="MANUAL",outcome="failed"}')).toBe(1);
    expect(m.get('segments_evaluation_failures_total{reason="RESOURCE_EXHAUSTED"}')).toBe(1);
    expect(m.get('segments_store_query_duration_seconds_count{store="postgres",kind="transaction"}')).toBeGreaterThan(0);
    expect(m.get('segments_store_query_duration_seconds_count{store="postgres",kind="query"}')).toBeGreaterThan(0);
    // Compaction runs every 200 ms here and measures the tables after each pass.
    await expect.poll(async () => (await samples()).get("segments_change_log_bytes") ?? 0, { timeout: 10_000 }).toBeGreaterThan(0);
  });

  it("echoes the client's request id in the response headers", async () => {
    const client = new grpc.Client(service.address, grpc.credentials.createInsecure());
    const headers = await new Promise<grpc.Metadata>((resolve, reject) => {
      const metadata = new grpc.Metadata();
      metadata.set("x-request-id", "echo-me-42");
      const call = client.makeUnaryRequest(
        "/grpc.health.v1.Health/Check",
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.alloc(0),
        metadata,
        (error) => {
          if (error !== null) reject(error);
        },
      );
      call.on("metadata", resolve);
    });
    client.close();
    expect(headers.get("x-request-id")).toEqual(["echo-me-42"]);
  });

  it("reports ready while the store answers, and not ready (liveness unchanged) while it does not", async () => {
    expect((await scrape("/readyz")).status).toBe(200);
    proxy.freeze();
    try {
      const readyz = await scrape("/readyz");
      expect(readyz.status).toBe(503);
      expect(await readyz.text()).toContain("the store does not answer");
      expect((await scrape("/healthz")).status).toBe(200);
      expect((await scrape("/metrics")).status).toBe(200);
    } finally {
      proxy.thaw();
    }
    await expect.poll(async () => (await scrape("/readyz")).status, { timeout: 10_000 }).toBe(200);
  });
});
