/**
 * Bad input and refused operations get the documented status code and a message that names the
 * field or state — and change nothing.
 */
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  PreconditionFailureSchema,
  ResourceInfoSchema,
} from "../../src/gen/google/rpc/error_details_pb.js";
import { SegmentType } from "../../src/gen/segments/v1/segment_pb.js";
import { startService, type TestService } from "../support/service.js";
import { detail, failure } from "../support/status.js";
import { STORES, type TestStore } from "../support/stores.js";

describe.each(STORES)("error answers on $name", (kind) => {
  let store: TestStore;
  let service: TestService;
  let draft: string;
  let active: string;

  beforeAll(async () => {
    store = await kind.create();
    service = await startService(store);
    draft = (await service.segments.createSegment({ name: "Draft one", type: SegmentType.STATIC })).segment?.id ?? "";
    active = (await service.segments.createSegment({ name: "Active one", type: SegmentType.STATIC })).segment?.id ?? "";
    await service.segments.activateSegment({ segmentId: active });
  });
  afterAll(async () => {
    await service.stop();
    await store.drop();
  });

  const check = (userId: string, segmentId: string) => service.membership.checkMembership({ userId, segmentIds: [segmentId] });

  it("refuses CheckMembership on a DRAFT segment with FAILED_PRECONDITION naming the status", async () => {
    const error = await failure(check("alice", draft));
    expect(error.code).toBe(status.FAILED_PRECONDITION);
    expect(error.details).toContain("is DRAFT");
    expect(error.details).toContain("activate it first");
    expect(detail(error, PreconditionFailureSchema)?.violations[0]?.subject).toBe("status");
    expect(detail(error, ErrorInfoSchema)?.reason).toBe("FAILED_PRECONDITION");
  });

  it("answers NOT_FOUND for an unknown segment and INVALID_ARGUMENT for a malformed id", async () => {
    const unknown = "0190b6a0-0000-7000-8000-000000000000";
    const notFound = await failure(check("alice", unknown));
    expect(notFound.code).toBe(status.NOT_FOUND);
    expect(notFound.details).toContain(unknown);
    const malformed = await failure(check("alice", "not-a-uuid"));
    expect(malformed.code).toBe(status.INVALID_ARGUMENT);
    expect(detail(malformed, BadRequestSchema)?.fieldViolations[0]?.field).toBe("segment_ids[0]");
  });

  it("refuses an empty user id and one over 256 bytes, naming user_id", async () => {
    for (const userId of ["", "x".repeat(257), `${"é".repeat(128)}a`]) {
      const error = await failure(check(userId, active));
      expect(error.code).toBe(status.INVALID_ARGUMENT);
      expect(error.details).toMatch(/^user_id: /);
      expect(detail(error, BadRequestSchema)?.fieldViolations[0]?.field).toBe("user_id");
    }
    // Exactly 256 bytes (128 two-byte characters) is allowed.
    expect((await check("é".repeat(128), active)).results[0]?.member).toBe(false);
  });

  it("refuses 200,001 ids in one AddMembers with the limit in the message, applying nothing", async () => {
    const userIds = Array.from({ length: 200_001 }, (_, i) => `u${i}`);
    const error = await failure(service.segments.addMembers({ segmentId: active, userIds }));
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(error.details).toContain("limit of 100000");
    expect(detail(error, BadRequestSchema)?.fieldViolations[0]?.field).toBe("user_ids");
    const after = await service.segments.getSegment({ segmentId: active });
    expect(after.segment).toMatchObject({ memberCount: 0n, version: 0n });
  });

  it("refuses member changes on a non-STATIC segment and repeated activation", async () => {
    const dynamic = (await service.segments.createSegment({ name: "Dynamic one", type: SegmentType.DYNAMIC })).segment?.id ?? "";
    const wrongType = await failure(service.segments.addMembers({ segmentId: dynamic, userIds: ["a"] }));
    expect(wrongType.code).toBe(status.FAILED_PRECONDITION);
    expect(wrongType.details).toContain("needs a STATIC segment; this one is DYNAMIC");
    const noQuery = await failure(service.segments.activateSegment({ segmentId: dynamic }));
    expect(noQuery.code).toBe(status.FAILED_PRECONDITION);
    const twice = await failure(service.segments.activateSegment({ segmentId: active }));
    expect(twice.code).toBe(status.FAILED_PRECONDITION);
    expect(twice.details).toContain("the segment is ACTIVE; allowed from ACTIVE: PauseSegment, ArchiveSegment");
  });

  it("refuses a name already taken, ignoring case, with ALREADY_EXISTS", async () => {
    const error = await failure(service.segments.createSegment({ name: "  ACTIVE ONE ", type: SegmentType.STATIC }));
    expect(error.code).toBe(status.ALREADY_EXISTS);
    // It names the segment that holds the name, as stored — not the caller's spelling.
    expect(error.details).toContain(`segment ${active} ("Active one")`);
    expect(detail(error, ResourceInfoSchema)?.resourceName).toBe(active);
  });

  it("validates definitions: missing type, blank name, bad cron and time zone", async () => {
    const cases: [Parameters<typeof service.segments.createSegment>[0], string][] = [
      [{ name: "No type" }, "type"],
      [{ name: "   ", type: SegmentType.STATIC }, "name"],
      [{ name: "x".repeat(201), type: SegmentType.STATIC }, "name"],
      [{ name: "Long description", description: "d".repeat(2001), type: SegmentType.STATIC }, "description"],
      [{ name: "Bad cron", type: SegmentType.DYNAMIC, schedule: { cron: "every day", timeZone: "UTC" } }, "schedule.cron"],
      [{ name: "Bad zone", type: SegmentType.DYNAMIC, schedule: { cron: "0 0 * * *", timeZone: "Mars/Olympus" } }, "schedule.time_zone"],
      [{ name: "Static query", type: SegmentType.STATIC, query: { kind: { case: "sql", value: "SELECT 1 AS user_id" } } }, "query"],
    ];
    for (const [request, field] of cases) {
      const error = await failure(service.segments.createSegment(request));
      expect(error.code, field).toBe(status.INVALID_ARGUMENT);
      expect(detail(error, BadRequestSchema)?.fieldViolations[0]?.field).toBe(field);
    }
  });
});

describe("message size limit", () => {
  it("answers RESOURCE_EXHAUSTED for a request over MAX_MESSAGE_BYTES", async () => {
    const store = await STORES[0]?.create();
    if (store === undefined) throw new Error("no store");
    const service = await startService(store, { MAX_MESSAGE_BYTES: "4096" });
    try {
      const error = await failure(
        service.membership.checkMembership({ userId: "a", segmentIds: Array.from({ length: 100 }, () => "x".repeat(64)) }),
      );
      expect(error.code).toBe(status.RESOURCE_EXHAUSTED);
    } finally {
      await service.stop();
      await store.drop();
    }
  });
});
