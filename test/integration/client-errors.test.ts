/**
 * SegmentsClient against the real service: its errors arrive as SegmentsError with the google.rpc
 * details decoded, and a read started while the service is down completes once it is back.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, type RetryEvent, SegmentsClient, type SegmentsError, SegmentType } from "../../src/client/index.js";
import { startService, type TestService } from "../support/service.js";
import { STORES, type TestStore } from "../support/stores.js";

// The client does not care which store the service uses; the embedded one needs no server.
const pglite = STORES.filter((kind) => kind.name === "pglite");

describe.each(pglite)("SegmentsClient against the real service on $name", (kind) => {
  let store: TestStore;
  let service: TestService;
  let client: SegmentsClient;
  let draft: string;

  beforeAll(async () => {
    store = await kind.create();
    service = await startService(store);
    client = new SegmentsClient(service.address, { metadata: { "x-caller": "client-errors-test" } });
    draft = (await client.segments.createSegment({ name: "Errors draft", type: SegmentType.STATIC })).segment?.id ?? "";
  });
  afterAll(async () => {
    client.close();
    await service.stop();
    await store.drop();
  });

  const failure = async (call: Promise<unknown>): Promise<SegmentsError> => {
    const error: unknown = await call.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error, "the call should have failed").toBeDefined();
    expect((error as Error).name).toBe("SegmentsError");
    return error as SegmentsError;
  };

  it("decodes INVALID_ARGUMENT with its field violation, reason, domain and the request id sent", async () => {
    const error = await failure(
      client.membership.checkMembership({ userId: "", segmentIds: [draft] }, { requestId: "client-errors-invalid-1" }),
    );
    expect(error.code).toBe(Code.INVALID_ARGUMENT);
    expect(error.codeName).toBe("INVALID_ARGUMENT");
    expect(error.method).toBe("segments.v1.MembershipService/CheckMembership");
    expect(error.reason).toBe("INVALID_ARGUMENT");
    expect(error.domain).toBe("segments.v1");
    expect(error.requestId).toBe("client-errors-invalid-1");
    expect(error.fieldViolations).toEqual([{ field: "user_id", description: expect.stringContaining("user_id") }]);
    expect(error.message).toContain("user_id");
  });

  it("reports the request id the service logged when the caller gave none", async () => {
    const error = await failure(client.membership.checkMembership({ userId: "alice", segmentIds: ["not-a-uuid"] }));
    expect(error.fieldViolations[0]?.field).toBe("segment_ids[0]");
    expect(error.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(error.errorMetadata.request_id).toBe(error.requestId);
  });

  it("decodes NOT_FOUND and ALREADY_EXISTS with the resource", async () => {
    const unknown = "0190b6a0-0000-7000-8000-000000000000";
    const notFound = await failure(client.segments.getSegment({ segmentId: unknown }));
    expect(notFound.code).toBe(Code.NOT_FOUND);
    expect(notFound.resource?.name).toBe(unknown);
    const taken = await failure(client.segments.createSegment({ name: "errors DRAFT", type: SegmentType.STATIC }));
    expect(taken.code).toBe(Code.ALREADY_EXISTS);
    expect(taken.resource?.name).toContain(draft);
  });

  it("decodes FAILED_PRECONDITION with the violated condition", async () => {
    const error = await failure(client.membership.checkMembership({ userId: "alice", segmentIds: [draft] }));
    expect(error.code).toBe(Code.FAILED_PRECONDITION);
    expect(error.preconditionViolations[0]?.subject).toBe("status");
    expect(error.message).toContain("DRAFT");
  });

  it("completes a read started while the service is down, retrying until it is back", async () => {
    const port = service.address.split(":")[1] ?? "";
    await service.stop();
    const retries: RetryEvent[] = [];
    let restarted: Promise<TestService> | undefined;
    // Not bound by time: enough attempts for the restart, each waiting at most 200 ms.
    const patient = new SegmentsClient(`127.0.0.1:${port}`, {
      retry: { maxAttempts: 1_000, initialBackoffMs: 50, maxBackoffMs: 200 },
      deadlines: { admin: null },
      onRetry: (event) => {
        retries.push(event);
        restarted ??= startService(store, { GRPC_PORT: port });
      },
    });
    try {
      const answer = await patient.segments.getSegment({ segmentId: draft });
      expect(answer.segment?.name).toBe("Errors draft");
      expect(retries.length).toBeGreaterThan(0);
      expect(retries.every((retry) => retry.error.code === Code.UNAVAILABLE)).toBe(true);
    } finally {
      patient.close();
      if (restarted !== undefined) service = await restarted;
    }
  });
});
