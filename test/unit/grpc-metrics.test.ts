/** The gRPC server families: exact counts and histogram buckets in prom-client's exposition. */
import { status } from "@grpc/grpc-js";
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { GrpcMetrics } from "../../src/metrics/grpc-metrics.js";

describe("grpc server metrics", () => {
  it("exposes started, handled by code, the duration histogram and stream messages under the standard names", async () => {
    const metrics = new GrpcMetrics();
    const check = metrics.method("segments.v1.MembershipService/CheckMembership", "unary");
    const imports = metrics.method("segments.v1.SegmentService/ImportMembers", "client_stream");
    check.started += 3;
    check.finished(status.OK, 0.00005);
    check.finished(status.OK, 0.003);
    check.finished(status.INVALID_ARGUMENT, 100);
    imports.started++;
    imports.received += 4;
    imports.finished(status.OK, 0.0001);
    const registry = new Registry();
    metrics.register(registry);
    const text = await registry.metrics();
    const labels = 'grpc_service="segments.v1.MembershipService",grpc_method="CheckMembership",grpc_type="unary"';
    const lines = text.split("\n");
    expect(lines).toContain(`grpc_server_started_total{${labels}} 3`);
    expect(lines).toContain(`grpc_server_handled_total{${labels},grpc_code="OK"} 2`);
    expect(lines).toContain(`grpc_server_handled_total{${labels},grpc_code="InvalidArgument"} 1`);
    expect(lines).toContain("# TYPE grpc_server_handling_seconds histogram");
    // Cumulative: 50 µs falls in le=0.0001, 3 ms in le=0.005, 100 s only in +Inf.
    expect(lines).toContain(`grpc_server_handling_seconds_bucket{${labels},le="0.0001"} 1`);
    expect(lines).toContain(`grpc_server_handling_seconds_bucket{${labels},le="0.0025"} 1`);
    expect(lines).toContain(`grpc_server_handling_seconds_bucket{${labels},le="0.005"} 2`);
    expect(lines).toContain(`grpc_server_handling_seconds_bucket{${labels},le="60"} 2`);
    expect(lines).toContain(`grpc_server_handling_seconds_bucket{${labels},le="+Inf"} 3`);
    expect(lines).toContain(`grpc_server_handling_seconds_count{${labels}} 3`);
    expect(lines).toContain(`grpc_server_handling_seconds_sum{${labels}} 100.00305`);
    // A duration exactly on a bound belongs to that bucket (le: less than or equal).
    expect(lines).toContain(
      'grpc_server_handling_seconds_bucket{grpc_service="segments.v1.SegmentService",grpc_method="ImportMembers",grpc_type="client_stream",le="0.0001"} 1',
    );
    expect(lines).toContain(
      'grpc_server_msg_received_total{grpc_service="segments.v1.SegmentService",grpc_method="ImportMembers",grpc_type="client_stream"} 4',
    );
    // Unary methods have no message counters.
    expect(text).not.toMatch(/grpc_server_msg_received_total\{[^}]*CheckMembership/);
  });
});
