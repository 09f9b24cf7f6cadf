/**
 * SegmentsClient against grpc-js servers that fail on purpose (failure injection over the real
 * transport): which failures are retried and how long it waits, deadlines per call kind,
 * AbortSignal, and server streams cancelled on the server when the consumer leaves the loop.
 */
import type * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Code, type RetryEvent, SegmentsClient, type SegmentsClientOptions, SegmentsError } from "../../src/client/index.js";
import { UnavailableError } from "../../src/errors.js";
import { MembershipService } from "../../src/gen/segments/v1/membership_service_pb.js";
import { SegmentService } from "../../src/gen/segments/v1/segment_service_pb.js";
import { toStatus } from "../../src/grpc/status.js";
import { type FakeHandler, type FakeServer, startFakeServer } from "../support/fake-server.js";

const SEGMENT_ID = "0190f5a0-0000-7000-8000-000000000001";

let server: FakeServer | undefined;
let client: SegmentsClient | undefined;
afterEach(async () => {
  client?.close();
  await server?.stop();
  client = undefined;
  server = undefined;
});

/** A fake service (both services' handlers by method name) and a client of it, with quick retries. */
async function connect(handlers: Record<string, FakeHandler>, options: SegmentsClientOptions = {}): Promise<SegmentsClient> {
  const pick = (service: typeof SegmentService | typeof MembershipService) =>
    Object.fromEntries(Object.entries(handlers).filter(([name]) => service.methods.some((m) => m.localName === name)));
  server = await startFakeServer([
    [SegmentService, pick(SegmentService)],
    [MembershipService, pick(MembershipService)],
  ]);
  client = new SegmentsClient(server.address, { retry: { initialBackoffMs: 5, maxBackoffMs: 20 }, ...options });
  return client;
}

/** The status the real service sends when its database is unreachable: UNAVAILABLE with RetryInfo. */
const databaseDown = (retryAfterMs: number) => toStatus(new UnavailableError("database unreachable", undefined, retryAfterMs), "fake");

/** A unary handler that fails with `failure` for the first `failures` calls, then answers `response`; counts attempts. */
function flaky(
  failures: number,
  response: unknown = {},
  failure: () => Partial<grpc.StatusObject> = () => ({ code: Code.UNAVAILABLE, details: "down" }),
) {
  const seen = { attempts: 0, requestIds: [] as unknown[] };
  const handler: FakeHandler = (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
    seen.attempts++;
    seen.requestIds.push(call.metadata.get("x-request-id")[0]);
    if (seen.attempts <= failures) callback(failure(), null);
    else callback(null, response);
  };
  return { seen, handler };
}

/** The failure of `call` as a SegmentsError; fails the test when the call succeeds or fails otherwise. */
async function failure(call: Promise<unknown>): Promise<SegmentsError> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SegmentsError);
  return error as SegmentsError;
}

describe("retries", () => {
  it("retries UNAVAILABLE on an idempotent read until it succeeds, with one request id for every attempt", async () => {
    const { seen, handler } = flaky(2, { results: [{ segmentId: SEGMENT_ID, member: true, version: 7n }] });
    const retries: RetryEvent[] = [];
    const segments = await connect({ checkMembership: handler }, { onRetry: (event) => retries.push(event) });
    const answer = await segments.membership.checkMembership({ userId: "alice", segmentIds: [SEGMENT_ID] });
    expect(answer.results[0]?.member).toBe(true);
    expect(seen.attempts).toBe(3);
    expect(retries.map((r) => [r.method, r.attempt, r.error.code])).toEqual([
      ["segments.v1.MembershipService/CheckMembership", 1, Code.UNAVAILABLE],
      ["segments.v1.MembershipService/CheckMembership", 2, Code.UNAVAILABLE],
    ]);
    for (const retry of retries) expect(retry.delayMs).toBeLessThanOrEqual(20);
    expect(new Set(seen.requestIds).size).toBe(1);
    expect(seen.requestIds[0]).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("gives up after maxAttempts with the last UNAVAILABLE", async () => {
    const { seen, handler } = flaky(Number.POSITIVE_INFINITY);
    const segments = await connect({ getSegment: handler }, { retry: { maxAttempts: 3, initialBackoffMs: 1 } });
    const error = await failure(segments.segments.getSegment({ segmentId: SEGMENT_ID }));
    expect(error.code).toBe(Code.UNAVAILABLE);
    expect(error.method).toBe("segments.v1.SegmentService/GetSegment");
    expect(seen.attempts).toBe(3);
  });

  it.each([
    ["addMembers", { segmentId: SEGMENT_ID, userIds: ["a"] }, 2],
    ["removeMembers", { segmentId: SEGMENT_ID, userIds: ["a"] }, 2],
    ["subtractSegment", { segmentId: SEGMENT_ID }, 2],
    ["updateSegment", { segment: { id: SEGMENT_ID } }, 2],
    ["rollbackSegment", { segmentId: SEGMENT_ID }, 2],
    ["createSegment", { name: "x" }, 1],
    ["deleteSegment", { segmentId: SEGMENT_ID }, 1],
    ["activateSegment", { segmentId: SEGMENT_ID }, 1],
    ["pauseSegment", { segmentId: SEGMENT_ID }, 1],
    ["resumeSegment", { segmentId: SEGMENT_ID }, 1],
    ["archiveSegment", { segmentId: SEGMENT_ID }, 1],
    ["restoreSegment", { segmentId: SEGMENT_ID }, 1],
    ["evaluateSegment", { segmentId: SEGMENT_ID }, 1],
    ["populateFromQuery", { segmentId: SEGMENT_ID }, 1],
  ] as const)("%s %j after one UNAVAILABLE: %i attempt(s)", async (name, request, attempts) => {
    const { seen, handler } = flaky(1);
    const segments = await connect({ [name]: handler });
    const call = (segments.segments[name] as (request: unknown) => Promise<unknown>)(request);
    if (attempts === 1) expect((await failure(call)).code).toBe(Code.UNAVAILABLE);
    else await call;
    expect(seen.attempts).toBe(attempts);
  });

  it.each([Code.INTERNAL, Code.UNKNOWN, Code.DEADLINE_EXCEEDED, Code.RESOURCE_EXHAUSTED, Code.ABORTED, Code.FAILED_PRECONDITION])(
    "does not retry code %i, even on an idempotent read",
    async (code) => {
      const { seen, handler } = flaky(1, {}, () => ({ code, details: "no" }));
      const segments = await connect({ batchCheckMembership: handler });
      expect((await failure(segments.membership.batchCheckMembership({ segmentId: SEGMENT_ID, userIds: ["a"] }))).code).toBe(code);
      expect(seen.attempts).toBe(1);
    },
  );

  it("does not retry when the client or the call says so", async () => {
    const { seen, handler } = flaky(Number.POSITIVE_INFINITY);
    let segments = await connect({ getSegment: handler }, { retry: false });
    await failure(segments.segments.getSegment({ segmentId: SEGMENT_ID }));
    expect(seen.attempts).toBe(1);
    segments.close();
    await server?.stop();
    segments = await connect({ getSegment: handler });
    await failure(segments.segments.getSegment({ segmentId: SEGMENT_ID }, { retry: false }));
    expect(seen.attempts).toBe(2);
  });

  it("waits as long as the server's RetryInfo asks, not the shorter backoff", async () => {
    const { seen, handler } = flaky(1, {}, () => databaseDown(250));
    const retries: RetryEvent[] = [];
    const segments = await connect({ addMembers: handler }, { onRetry: (event) => retries.push(event) });
    await segments.segments.addMembers({ segmentId: SEGMENT_ID, userIds: ["a"] });
    expect(seen.attempts).toBe(2);
    expect(retries).toHaveLength(1);
    expect(retries[0]?.error.retryDelayMs).toBe(250);
    expect(retries[0]?.delayMs).toBeGreaterThanOrEqual(250);
    expect(retries[0]?.delayMs).toBeLessThanOrEqual(300);
  });

  it("gives up at once when the server's delay would end after the deadline", async () => {
    const { seen, handler } = flaky(1, {}, () => databaseDown(60_000));
    const segments = await connect({ getSegment: handler });
    const error = await failure(segments.segments.getSegment({ segmentId: SEGMENT_ID }, { timeoutMs: 10_000 }));
    expect(error.code).toBe(Code.UNAVAILABLE);
    expect(error.retryDelayMs).toBe(60_000);
    expect(error.reason).toBe("UNAVAILABLE");
    expect(seen.attempts).toBe(1);
  });
});

describe("streams", () => {
  /** A server stream handler: fails UNAVAILABLE on its first `failures` calls, else sends `before` messages then ends with `end`. */
  function stream(failures: number, before: number, end?: Partial<grpc.StatusObject>) {
    const seen = { attempts: 0 };
    const handler: FakeHandler = (call: grpc.ServerWritableStream<unknown, unknown>) => {
      seen.attempts++;
      if (seen.attempts <= failures) {
        call.emit("error", { code: Code.UNAVAILABLE, details: "down" });
        return;
      }
      for (let i = 0; i < before; i++) call.write({ userIds: [`user-${i}`], resumeToken: String(i) });
      if (end === undefined) call.end();
      else call.emit("error", end);
    };
    return { seen, handler };
  }

  const read = async (iterable: AsyncIterable<{ userIds: string[] }>) => {
    const ids: string[] = [];
    for await (const batch of iterable) ids.push(...batch.userIds);
    return ids;
  };

  it("retries a server stream that failed before its first message", async () => {
    const { seen, handler } = stream(2, 3);
    const segments = await connect({ streamAudience: handler });
    expect(await read(segments.membership.streamAudience({ includeSegmentIds: [SEGMENT_ID] }))).toEqual(["user-0", "user-1", "user-2"]);
    expect(seen.attempts).toBe(3);
  });

  it("never retries a server stream that already delivered messages: its failure reaches the loop after them", async () => {
    const { seen, handler } = stream(0, 2, { code: Code.UNAVAILABLE, details: "gone mid-stream" });
    const segments = await connect({ streamAudience: handler });
    const ids: string[] = [];
    const error = await failure(
      (async () => {
        for await (const batch of segments.membership.streamAudience({ includeSegmentIds: [SEGMENT_ID] })) ids.push(...batch.userIds);
      })(),
    );
    expect(error.code).toBe(Code.UNAVAILABLE);
    expect(ids).toEqual(["user-0", "user-1"]);
    expect(seen.attempts).toBe(1);
  });

  it("never retries a client stream", async () => {
    let attempts = 0;
    const segments = await connect({
      importMembers: (_call: unknown, callback: grpc.sendUnaryData<unknown>) => {
        attempts++;
        callback({ code: Code.UNAVAILABLE, details: "down" }, null);
      },
    });
    const error = await failure(segments.segments.importMembers([{ segmentId: SEGMENT_ID, userIds: ["a"] }]));
    expect(error.code).toBe(Code.UNAVAILABLE);
    expect(attempts).toBe(1);
  });

  it("leaving a for-await loop early cancels the stream on the server", async () => {
    const server = { cancelled: false, written: 0 };
    const segments = await connect({
      validateTargeting: flaky(0, { valid: true }).handler,
      // Endless, with backpressure: writes until the transport pushes back, then waits for drain.
      streamAudience: (call: grpc.ServerWritableStream<unknown, unknown>) => {
        call.on("cancelled", () => {
          server.cancelled = true;
        });
        const pump = () => {
          while (!server.cancelled && call.write({ userIds: [`user-${server.written++}`] }));
          if (!server.cancelled) call.once("drain", pump);
        };
        pump();
      },
    });
    let received = 0;
    for await (const _ of segments.membership.streamAudience({ includeSegmentIds: [SEGMENT_ID] })) {
      if (++received === 3) break;
    }
    await vi.waitFor(() => expect(server.cancelled).toBe(true), { timeout: 10_000 });
    // Only the stream ended: the connection serves the next call.
    expect((await segments.membership.validateTargeting({ segmentIds: [SEGMENT_ID] })).valid).toBe(true);
  });
});

describe("deadlines", () => {
  /** A handler that records the deadline the server received, then answers. */
  function deadlineProbe() {
    const seen: { deadline: number | undefined } = { deadline: undefined };
    const handler: FakeHandler = (call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>, callback) => {
      const deadline = call.getDeadline();
      seen.deadline = deadline instanceof Date ? deadline.getTime() : deadline;
      if (typeof callback === "function") callback(null, {});
      else (call as grpc.ServerWritableStream<unknown, unknown>).end();
    };
    return { seen, handler };
  }

  /** The deadline the server saw for `call`, checked to be `ms` after its start (null: none). */
  async function expectDeadline(seen: { deadline: number | undefined }, ms: number | null, call: () => Promise<unknown>) {
    const before = Date.now();
    await call();
    const after = Date.now();
    if (ms === null) expect(seen.deadline).toBe(Number.POSITIVE_INFINITY);
    else {
      // Sent as a relative grpc-timeout, so only the call's own duration blurs it (plus rounding).
      expect(seen.deadline).toBeGreaterThanOrEqual(before + ms - 2);
      expect(seen.deadline).toBeLessThanOrEqual(after + ms + 2);
    }
  }

  it("gives each call kind its default deadline, and lets a call override it", async () => {
    const probes = {
      checkMembership: deadlineProbe(),
      getSegment: deadlineProbe(),
      evaluateSegment: deadlineProbe(),
      streamAudience: deadlineProbe(),
    };
    const segments = await connect(Object.fromEntries(Object.entries(probes).map(([name, probe]) => [name, probe.handler])), {
      deadlines: { membership: 111_000, admin: 222_000, query: 333_000 },
    });
    await expectDeadline(probes.checkMembership.seen, 111_000, () => segments.membership.checkMembership({ userId: "a" }));
    await expectDeadline(probes.getSegment.seen, 222_000, () => segments.segments.getSegment({ segmentId: SEGMENT_ID }));
    await expectDeadline(probes.evaluateSegment.seen, 333_000, () => segments.segments.evaluateSegment({ segmentId: SEGMENT_ID }));
    await expectDeadline(probes.streamAudience.seen, null, async () => {
      for await (const _ of segments.membership.streamAudience({})) break;
    });
    await expectDeadline(probes.getSegment.seen, 4_000, () =>
      segments.segments.getSegment({ segmentId: SEGMENT_ID }, { timeoutMs: 4_000 }),
    );
    await expectDeadline(probes.getSegment.seen, null, () => segments.segments.getSegment({ segmentId: SEGMENT_ID }, { timeoutMs: null }));
  });

  it("applies the documented defaults: 2 s for the hot path", async () => {
    const probe = deadlineProbe();
    const segments = await connect({ checkMembership: probe.handler });
    await expectDeadline(probe.seen, 2_000, () => segments.membership.checkMembership({ userId: "a" }));
  });

  it("fails DEADLINE_EXCEEDED, without retrying, when a call outlives its default deadline", async () => {
    let attempts = 0;
    const segments = await connect(
      {
        checkMembership: () => {
          attempts++; // never answers
        },
      },
      { deadlines: { membership: 50 } },
    );
    expect((await failure(segments.membership.checkMembership({ userId: "a" }))).code).toBe(Code.DEADLINE_EXCEEDED);
    expect(attempts).toBe(1);
  });
});

describe("AbortSignal", () => {
  it("cancels a call in flight, on the server too", async () => {
    const seen = { started: false, cancelled: false };
    const segments = await connect({
      getSegment: (call: grpc.ServerUnaryCall<unknown, unknown>) => {
        seen.started = true;
        call.on("cancelled", () => {
          seen.cancelled = true;
        });
      },
    });
    const controller = new AbortController();
    const call = segments.segments.getSegment({ segmentId: SEGMENT_ID }, { signal: controller.signal });
    await vi.waitFor(() => expect(seen.started).toBe(true));
    controller.abort(new Error("user went away"));
    const error = await failure(call);
    expect(error.code).toBe(Code.CANCELLED);
    expect((error.cause as Error).message).toBe("user went away");
    await vi.waitFor(() => expect(seen.cancelled).toBe(true));
  });

  it("sends nothing when the signal has already fired", async () => {
    const { seen, handler } = flaky(0);
    const segments = await connect({ getSegment: handler });
    const error = await failure(segments.segments.getSegment({ segmentId: SEGMENT_ID }, { signal: AbortSignal.abort() }));
    expect(error.code).toBe(Code.CANCELLED);
    expect(seen.attempts).toBe(0);
  });

  it("ends the wait before a retry", async () => {
    const { seen, handler } = flaky(Number.POSITIVE_INFINITY, {}, () => databaseDown(600_000));
    const controller = new AbortController();
    const segments = await connect({ getSegment: handler }, { onRetry: () => controller.abort() });
    const error = await failure(segments.segments.getSegment({ segmentId: SEGMENT_ID }, { signal: controller.signal, timeoutMs: null }));
    expect(error.code).toBe(Code.CANCELLED);
    expect(seen.attempts).toBe(1);
  });

  it("ends a server stream", async () => {
    const seen = { cancelled: false };
    const segments = await connect({
      watchMembership: (call: grpc.ServerWritableStream<unknown, unknown>) => {
        call.write({ segmentId: SEGMENT_ID, version: 1n, versionComplete: true });
        call.on("cancelled", () => {
          seen.cancelled = true;
        });
      },
    });
    const controller = new AbortController();
    const versions: bigint[] = [];
    const error = await failure(
      (async () => {
        for await (const change of segments.membership.watchMembership({ segmentIds: [SEGMENT_ID] }, { signal: controller.signal })) {
          versions.push(change.version);
          controller.abort();
        }
      })(),
    );
    expect(error.code).toBe(Code.CANCELLED);
    expect(versions).toEqual([1n]);
    await vi.waitFor(() => expect(seen.cancelled).toBe(true));
  });
});

describe("waitForReady", () => {
  it("resolves once connected", async () => {
    const segments = await connect({});
    await segments.waitForReady({ deadline: new Date(Date.now() + 10_000) });
  });

  it("fails UNAVAILABLE when nothing answers by the deadline", async () => {
    const stopped = await startFakeServer([]);
    await stopped.stop();
    client = new SegmentsClient(stopped.address);
    expect((await failure(client.waitForReady({ deadline: new Date(Date.now() + 200) }))).code).toBe(Code.UNAVAILABLE);
  });
});
