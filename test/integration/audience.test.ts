/**
 * The read side for campaigns and rules (issue 10): CountAudience and StreamAudience against
 * sets computed independently in the test, snapshots that hold while members change, resume
 * tokens that deliver every id exactly once, a stalled reader cut off (backpressure), and
 * ListUserSegments / ValidateTargeting as the seed's lifecycle says — on both stores.
 */
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadRequestSchema } from "../../src/gen/google/rpc/error_details_pb.js";
import type { StreamAudienceResponse } from "../../src/gen/segments/v1/membership_service_pb.js";
import { SegmentStatus, SegmentType } from "../../src/gen/segments/v1/segment_pb.js";
import { startService, type TestService, useService } from "../support/service.js";
import { detail, failure } from "../support/status.js";
import { STORES, type TestStore } from "../support/stores.js";

const N = 3_000;
const user = (n: number) => (n % 2 === 0 ? `aud_${n}` : `aud_odd_${n}_${"x".repeat(n % 7)}`);
const range = (from: number, to: number, step = 1) => Array.from({ length: Math.ceil((to - from) / step) }, (_, k) => from + k * step);
const usersOf = (ns: number[]) => new Set(ns.map(user));
const UNKNOWN_SEGMENT = "00000000-0000-4000-8000-000000000000";

describe.each(STORES)("audiences on $name", (kind) => {
  const t = useService(kind, { STREAM_IDLE_MS: "800" });
  const ids: Record<string, string> = {};
  const model: Record<string, Set<string>> = {};
  const everyone = usersOf(range(0, N));

  const create = async (key: string, type = SegmentType.STATIC) => {
    ids[key] = (await t.service.segments.createSegment({ name: `audience ${key}`, type })).segment?.id ?? "";
    return ids[key] as string;
  };
  const fill = async (key: string, ns: number[]) => {
    const id = await create(key);
    for (let k = 0; k < ns.length; k += 1_000)
      await t.service.segments.addMembers({ segmentId: id, userIds: ns.slice(k, k + 1_000).map(user) });
    model[key] = usersOf(ns);
    return id;
  };
  const expected = (include: string[], exclude: string[]) => {
    const out = new Set<string>();
    for (const key of include) for (const u of key === "everyone" ? everyone : (model[key] ?? [])) out.add(u);
    for (const key of exclude) for (const u of key === "everyone" ? everyone : (model[key] ?? [])) out.delete(u);
    return out;
  };
  const read = async (stream: AsyncIterable<StreamAudienceResponse>, limit = Number.POSITIVE_INFINITY) => {
    const messages: StreamAudienceResponse[] = [];
    for await (const message of stream) {
      messages.push(message);
      if (messages.length >= limit) break;
    }
    return messages;
  };
  const idsOf = (messages: StreamAudienceResponse[]) => messages.flatMap((m) => m.userIds);

  beforeAll(async () => {
    // Every user exists before any segment: EVERYONE is exactly `everyone`.
    const all = await create("all");
    for (let k = 0; k < N; k += 1_000) await t.service.segments.addMembers({ segmentId: all, userIds: range(k, k + 1_000).map(user) });
    model.all = everyone;
    await fill("a", range(0, 2_000));
    await fill("b", range(1_000, N));
    await fill("thirds", range(0, N, 3));
    await fill("small", [5, 6, 7, 2_999]);
    await fill("paused", range(0, 100));
    await fill("archived", range(0, 50));
    await create("draft");
    await create("everyone", SegmentType.EVERYONE);
    for (const key of ["all", "a", "b", "thirds", "small", "paused", "archived", "everyone"]) {
      await t.service.segments.activateSegment({ segmentId: ids[key] ?? "" });
    }
    await t.service.segments.pauseSegment({ segmentId: ids.paused ?? "" });
    await t.service.segments.archiveSegment({ segmentId: ids.archived ?? "" });
  });

  describe("CountAudience", () => {
    it.each([
      { include: ["a"], exclude: [] },
      { include: ["a", "b"], exclude: [] },
      { include: ["a", "b"], exclude: ["thirds"] },
      { include: ["a"], exclude: ["b", "small"] },
      { include: ["thirds", "small"], exclude: ["paused"] },
      { include: ["everyone"], exclude: [] },
      { include: ["everyone"], exclude: ["a"] },
      { include: ["a", "everyone"], exclude: ["thirds", "small"] },
      { include: ["a"], exclude: ["everyone"] },
      { include: ["a", "b"], exclude: ["a"] },
      { include: ["small", "small"], exclude: [] },
    ])("$include − $exclude", async ({ include, exclude }) => {
      const answer = await t.service.membership.countAudience({
        includeSegmentIds: include.map((k) => ids[k] ?? ""),
        excludeSegmentIds: exclude.map((k) => ids[k] ?? ""),
      });
      expect(answer.count).toBe(BigInt(expected(include, exclude).size));
      // Each distinct segment once, include segments first, in request order.
      const distinct = [...new Set([...include, ...exclude])].map((k) => ids[k]);
      expect(answer.asOf.map((v) => v.segmentId)).toEqual(distinct);
    });

    it("reports the version of each segment read", async () => {
      const segment = (await t.service.segments.getSegment({ segmentId: ids.a ?? "" })).segment;
      const answer = await t.service.membership.countAudience({ includeSegmentIds: [ids.a ?? ""] });
      expect(answer.asOf[0]?.version).toBe(segment?.version);
      expect(answer.asOf[0]?.time).toEqual(segment?.versionTime);
    });

    it("refuses DRAFT and ARCHIVED segments on either side, unknown and malformed ids, and empty or long lists", async () => {
      const count = (include: string[], exclude: string[] = []) =>
        failure(t.service.membership.countAudience({ includeSegmentIds: include, excludeSegmentIds: exclude }));
      expect((await count([ids.a ?? "", ids.draft ?? ""])).code).toBe(status.FAILED_PRECONDITION);
      expect((await count([ids.a ?? ""], [ids.archived ?? ""])).code).toBe(status.FAILED_PRECONDITION);
      expect((await count([UNKNOWN_SEGMENT])).code).toBe(status.NOT_FOUND);
      const malformed = await count([ids.a ?? "", "nope"]);
      expect(malformed.code).toBe(status.INVALID_ARGUMENT);
      expect(detail(malformed, BadRequestSchema)?.fieldViolations[0]?.field).toBe("include_segment_ids[1]");
      expect((await count([])).code).toBe(status.INVALID_ARGUMENT);
      expect((await count(Array.from({ length: 101 }, () => ids.a ?? ""))).code).toBe(status.INVALID_ARGUMENT);
    });
  });

  describe("StreamAudience", () => {
    const request = (include: string[], exclude: string[], batchSize: number, resumeToken = "") => ({
      includeSegmentIds: include.map((k) => ids[k] ?? ""),
      excludeSegmentIds: exclude.map((k) => ids[k] ?? ""),
      batchSize,
      resumeToken,
    });

    it.each([
      { include: ["a", "b"], exclude: ["thirds"], batch: 700 },
      { include: ["everyone"], exclude: ["small"], batch: 0 },
      { include: ["small"], exclude: ["everyone"], batch: 10 },
    ])("streams $include − $exclude exactly, each id once, in batches of $batch", async ({ include, exclude, batch }) => {
      const messages = await read(t.service.membership.streamAudience(request(include, exclude, batch)));
      const streamed = idsOf(messages);
      const want = expected(include, exclude);
      expect(new Set(streamed)).toEqual(want);
      expect(streamed).toHaveLength(want.size);
      for (const m of messages) expect(m.userIds.length).toBeLessThanOrEqual(batch === 0 ? 10_000 : batch);
      expect(messages[0]?.totalCount).toBe(BigInt(want.size));
      expect(messages[0]?.asOf.map((v) => v.segmentId)).toEqual([...include, ...exclude].map((k) => ids[k]));
      expect(messages.slice(1).every((m) => m.asOf.length === 0 && m.totalCount === 0n)).toBe(true);
      expect(messages[0]?.snapshotKept).toBeUndefined();
    });

    it("reads one snapshot: members changed mid-stream do not show", async () => {
      const id = await fill("moving", range(0, 1_000));
      await t.service.segments.activateSegment({ segmentId: id });
      const before = new Set(model.moving);
      const stream = t.service.membership.streamAudience(request(["moving"], [], 100));
      const messages: StreamAudienceResponse[] = [];
      for await (const message of stream) {
        messages.push(message);
        if (messages.length === 1) {
          await t.service.segments.removeMembers({ segmentId: id, userIds: range(500, 1_000).map(user) });
          await t.service.segments.addMembers({ segmentId: id, userIds: range(2_000, 2_500).map(user) });
        }
      }
      expect(new Set(idsOf(messages))).toEqual(before);
      expect(idsOf(messages)).toHaveLength(before.size);
      model.moving = usersOf([...range(0, 500), ...range(2_000, 2_500)]);
    });

    it("resumes after a broken stream: every id exactly once, in the original snapshot even after changes", async () => {
      const id = await fill("resumable", range(0, 2_000, 2));
      await t.service.segments.activateSegment({ segmentId: id });
      const want = new Set(model.resumable);
      const first = await read(t.service.membership.streamAudience(request(["resumable", "small"], ["thirds"], 50)), 4);
      // Membership moves on before the client comes back.
      await t.service.segments.removeMembers({ segmentId: id, userIds: range(0, 2_000, 2).map(user) });
      const original = new Set([...want, ...(model.small ?? [])].filter((u) => !model.thirds?.has(u)));
      model.resumable = new Set();
      const token = first[first.length - 1]?.resumeToken ?? "";
      const rest = await read(t.service.membership.streamAudience(request(["resumable", "small"], ["thirds"], 50, token)));
      expect(rest[0]?.snapshotKept).toBe(true);
      const all = [...idsOf(first), ...idsOf(rest)];
      expect(new Set(all)).toEqual(original);
      expect(all).toHaveLength(original.size);
      expect(rest[0]?.totalCount).toBe(BigInt(original.size));
    });

    it("refuses a token of other lists, a forged token, and a negative batch size", async () => {
      const first = await read(t.service.membership.streamAudience(request(["a"], [], 100)), 1);
      const token = first[0]?.resumeToken ?? "";
      const other = await failure(read(t.service.membership.streamAudience(request(["b"], [], 100, token))));
      expect(other.code).toBe(status.INVALID_ARGUMENT);
      expect(detail(other, BadRequestSchema)?.fieldViolations[0]?.field).toBe("resume_token");
      const forged = await failure(read(t.service.membership.streamAudience(request(["a"], [], 100, `${token.slice(0, -2)}AA`))));
      expect(forged.code).toBe(status.INVALID_ARGUMENT);
      expect((await failure(read(t.service.membership.streamAudience(request(["a"], [], -1))))).code).toBe(status.INVALID_ARGUMENT);
    });

    it("does not run ahead of a reader: one that stops reading is cut off after STREAM_IDLE_MS", async () => {
      // 3,000 ids in batches of 10 are 300 messages, far more than the transport's windows hold:
      // the server must wait for the reader, so a reader that stalls past the idle limit is cut off.
      const messages: StreamAudienceResponse[] = [];
      const error = await failure(
        (async () => {
          for await (const message of t.service.membership.streamAudience(request(["all"], [], 10))) {
            messages.push(message);
            if (messages.length === 1) await new Promise((resolve) => setTimeout(resolve, 2_000));
          }
        })(),
      );
      expect(error.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(error.details).toContain("STREAM_IDLE_MS");
      expect(idsOf(messages).length).toBeLessThan(N);
    });
  });

  describe("ListUserSegments", () => {
    it("lists every ACTIVE or PAUSED segment holding the user, EVERYONE included, by segment id", async () => {
      const answer = await t.service.membership.listUserSegments({ userId: user(6) });
      // Every segment of the model holding the user, but the archived one; EVERYONE holds everyone.
      const holding = Object.keys(model).filter((k) => k !== "archived" && model[k]?.has(user(6)));
      expect(holding).toEqual(expect.arrayContaining(["a", "thirds", "small", "paused"]));
      const want = [...holding, "everyone"].map((k) => ids[k] ?? "").sort();
      expect(answer.results.map((r) => r.segmentId)).toEqual(want);
      expect(answer.results.every((r) => r.member)).toBe(true);
      const a = answer.results.find((r) => r.segmentId === ids.a);
      expect(a?.version).toBe((await t.service.segments.getSegment({ segmentId: ids.a ?? "" })).segment?.version);
    });

    it("a user never seen is in EVERYONE segments only; a malformed id is INVALID_ARGUMENT", async () => {
      const answer = await t.service.membership.listUserSegments({ userId: "never-seen" });
      expect(answer.results.map((r) => r.segmentId)).toEqual([ids.everyone]);
      expect((await failure(t.service.membership.listUserSegments({ userId: "" }))).code).toBe(status.INVALID_ARGUMENT);
    });
  });

  describe("ValidateTargeting", () => {
    it("only ACTIVE segments may be newly targeted; the others are problems with status and reason", async () => {
      const answer = await t.service.membership.validateTargeting({
        segmentIds: [ids.a ?? "", ids.paused ?? "", ids.draft ?? "", ids.archived ?? "", UNKNOWN_SEGMENT, ids.everyone ?? ""],
      });
      expect(answer.valid).toBe(false);
      expect(answer.problems.map((p) => [p.segmentId, p.status])).toEqual([
        [ids.paused, SegmentStatus.PAUSED],
        [ids.draft, SegmentStatus.DRAFT],
        [ids.archived, SegmentStatus.ARCHIVED],
        [UNKNOWN_SEGMENT, SegmentStatus.UNSPECIFIED],
      ]);
      expect(answer.problems[0]?.reason).toContain("resume");
      expect(answer.problems[1]?.reason).toContain("activate");
      expect(answer.problems[2]?.reason).toContain("restore");
      const fine = await t.service.membership.validateTargeting({ segmentIds: [ids.a ?? "", ids.everyone ?? ""] });
      expect(fine).toMatchObject({ valid: true, problems: [] });
      const bad = await failure(t.service.membership.validateTargeting({ segmentIds: [ids.a ?? "", "x"] }));
      expect(detail(bad, BadRequestSchema)?.fieldViolations[0]?.field).toBe("segment_ids[1]");
    });
  });
});

describe.each(STORES)("a resumed audience stream past retained history on $name", (kind) => {
  const clock = { now: new Date("2026-02-01T00:00:00Z") };
  let store: TestStore;
  let service: TestService;
  beforeAll(async () => {
    store = await kind.create();
    const env = { COMPACTION_INTERVAL_MS: "100", HISTORY_RETENTION_DAYS: "1", SNAPSHOT_EVERY_CHANGES: "1" };
    service = await startService(store, env, undefined, () => clock.now);
  });
  afterAll(async () => {
    await service.stop();
    await store.drop();
  });

  it("continues in the current membership and says the snapshot was not kept", async () => {
    const id = (await service.segments.createSegment({ name: "pruned", type: SegmentType.STATIC })).segment?.id ?? "";
    await service.segments.addMembers({ segmentId: id, userIds: range(0, 100).map(user) });
    await service.segments.activateSegment({ segmentId: id });
    const request = { includeSegmentIds: [id], batchSize: 10 };
    const first: StreamAudienceResponse[] = [];
    for await (const message of service.membership.streamAudience(request)) if (first.push(message) === 2) break;
    await service.segments.removeMembers({ segmentId: id, userIds: range(50, 100).map(user) });
    await service.segments.addMembers({ segmentId: id, userIds: range(100, 110).map(user) });
    // Compaction (every 100 ms) snapshots each new version at the fake time, and prunes history up
    // to the newest snapshot older than the 1-day retention: moving the clock on two days at a
    // time puts every snapshot taken so far past it, until version 1 is no longer retained.
    for (let tries = 0; ; tries++) {
      clock.now = new Date(clock.now.getTime() + 2 * 86_400_000);
      const pruned = await service.segments.diffMembership({ segmentId: id, fromVersion: 1n, toVersion: 3n }).then(
        () => false,
        () => true,
      );
      if (pruned) break;
      if (tries > 200) throw new Error("history was never pruned");
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const rest: StreamAudienceResponse[] = [];
    const token = first[1]?.resumeToken ?? "";
    for await (const message of service.membership.streamAudience({ ...request, resumeToken: token })) rest.push(message);
    expect(rest[0]?.snapshotKept).toBe(false);
    // The current membership after the 20 ids already delivered: users 20–49, then the 10 new ones.
    const delivered = new Set(first.flatMap((m) => m.userIds));
    const current = [...range(0, 50), ...range(100, 110)].map(user).filter((u) => !delivered.has(u));
    expect(new Set(rest.flatMap((m) => m.userIds))).toEqual(new Set(current));
  });
});
