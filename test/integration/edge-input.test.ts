/**
 * Trust at the edges (issue 8, part C): page tokens cannot be forged or edited, U+0000 is refused
 * everywhere, out-of-range and over-limit queries are INVALID_ARGUMENT (not INTERNAL, not
 * stored), and ListSegments pages stay bounded in bytes — on both stores.
 */
import { create, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { BadRequestSchema } from "../../src/gen/google/rpc/error_details_pb.js";
import { ComparisonOperator, type FilterSchema, SegmentType, type TimeWindowSchema } from "../../src/gen/segments/v1/segment_pb.js";
import { ImportMode, ListSegmentsResponseSchema } from "../../src/gen/segments/v1/segment_service_pb.js";
import { startService, useService } from "../support/service.js";
import { detail, failure } from "../support/status.js";
import { STORES } from "../support/stores.js";

type FilterInit = MessageInitShape<typeof FilterSchema>;
type WindowKind = MessageInitShape<typeof TimeWindowSchema>["kind"];

/** A token in the format the service used to issue: readable base64url JSON, no signature. */
const readable = (payload: unknown) => Buffer.from(JSON.stringify(payload)).toString("base64url");
/** `token` with one character changed to another of the base64url alphabet. */
const edited = (token: string) => {
  const i = Math.floor(token.length / 2);
  return `${token.slice(0, i)}${token[i] === "A" ? "B" : "A"}${token.slice(i + 1)}`;
};
const eventWithin = (within: WindowKind): FilterInit => ({
  kind: { case: "event", value: { name: "login", within: { kind: within } } },
});

describe.each(STORES)("trust at the edges on $name", (kind) => {
  const t = useService(kind);

  const createStatic = async (name: string) =>
    (await t.service.segments.createSegment({ name, type: SegmentType.STATIC })).segment?.id ?? "";
  const createActive = async (name: string, type = SegmentType.STATIC) => {
    const id = (await t.service.segments.createSegment({ name, type })).segment?.id ?? "";
    await t.service.segments.activateSegment({ segmentId: id });
    return id;
  };
  /** Fails the test unless `call` is refused with INVALID_ARGUMENT naming `field`; returns the message. */
  const invalid = async (call: Promise<unknown>, field: string) => {
    const error = await failure(call);
    expect(error.code, error.details).toBe(status.INVALID_ARGUMENT);
    expect(detail(error, BadRequestSchema)?.fieldViolations[0]?.field).toBe(field);
    return error.details;
  };

  describe("page tokens", () => {
    it("ListMembers on an EVERYONE segment refuses forged and edited tokens and still follows its own across a restart", async () => {
      const everyone = await createActive("Everyone for tokens", SegmentType.EVERYONE);
      const filler = await createStatic("Token filler");
      await t.service.segments.addMembers({ segmentId: filler, userIds: ["t1", "t2", "t3"] });
      const first = await t.service.segments.listMembers({ segmentId: everyone, pageSize: 1 });
      expect(first.nextPageToken).not.toBe("");

      for (const after of [-1e9, 2 ** 32, 0.5])
        await invalid(t.service.segments.listMembers({ segmentId: everyone, pageToken: readable({ id: everyone, after }) }), "page_token");
      await invalid(t.service.segments.listMembers({ segmentId: everyone, pageToken: edited(first.nextPageToken) }), "page_token");
      await invalid(t.service.segments.listMembers({ segmentId: filler, pageToken: first.nextPageToken }), "page_token");

      // The key lives in the database: a token from before a restart still continues the listing.
      await t.service.stop();
      t.service = await startService(t.store);
      const rest = await t.service.segments.listMembers({ segmentId: everyone, pageSize: 10, pageToken: first.nextPageToken });
      expect([...first.userIds, ...rest.userIds].filter((id) => id.startsWith("t"))).toEqual(["t1", "t2", "t3"]);
    });

    it("ListSegmentHistory refuses a forged sequence number of 1e20 (was INTERNAL) and an edited token", async () => {
      const id = await createStatic("History tokens");
      await t.service.segments.updateSegment({ segmentId: id, segment: { description: "one" }, updateMask: { paths: ["description"] } });
      await t.service.segments.updateSegment({ segmentId: id, segment: { description: "two" }, updateMask: { paths: ["description"] } });
      const first = await t.service.segments.listSegmentHistory({ segmentId: id, pageSize: 1 });
      expect(first.nextPageToken).not.toBe("");
      await invalid(t.service.segments.listSegmentHistory({ segmentId: id, pageToken: readable({ s: 1e20, id }) }), "page_token");
      await invalid(t.service.segments.listSegmentHistory({ segmentId: id, pageToken: readable({ s: 1, id }) }), "page_token");
      await invalid(t.service.segments.listSegmentHistory({ segmentId: id, pageToken: edited(first.nextPageToken) }), "page_token");
      const rest = await t.service.segments.listSegmentHistory({ segmentId: id, pageToken: first.nextPageToken });
      expect(rest.entries).toHaveLength(2);
    });

    it("ListSegments refuses a readable token that names a real segment and the current filters", async () => {
      const id = await createStatic("Listing tokens");
      const filterKey = JSON.stringify([false, null, null, ""]);
      await invalid(t.service.segments.listSegments({ pageToken: readable({ a: id, f: filterKey }) }), "page_token");
      const first = await t.service.segments.listSegments({ pageSize: 1 });
      await invalid(t.service.segments.listSegments({ pageSize: 1, pageToken: edited(first.nextPageToken) }), "page_token");
    });

    it("DiffMembership refuses forged offsets and another method's token", async () => {
      const id = await createStatic("Diff tokens");
      await t.service.segments.addMembers({ segmentId: id, userIds: ["d1", "d2", "d3"] });
      const versions = { fromVersion: 0n, toVersion: 1n };
      const first = await t.service.segments.diffMembership({ segmentId: id, ...versions, pageSize: 1 });
      expect(first.nextPageToken).not.toBe("");
      for (const after of [-5, 1e9, 2 ** 40]) {
        await invalid(
          t.service.segments.diffMembership({ segmentId: id, ...versions, pageToken: readable({ id, after, versions: [0, 1] }) }),
          "page_token",
        );
      }
      const members = await t.service.segments.listMembers({ segmentId: id, pageSize: 1 });
      await invalid(t.service.segments.diffMembership({ segmentId: id, ...versions, pageToken: members.nextPageToken }), "page_token");
      await invalid(
        t.service.segments.diffMembership({ segmentId: id, ...versions, pageToken: edited(first.nextPageToken) }),
        "page_token",
      );
      const rest = await t.service.segments.diffMembership({ segmentId: id, ...versions, pageSize: 5, pageToken: first.nextPageToken });
      expect([...first.enteredUserIds, ...rest.enteredUserIds].sort()).toEqual(["d1", "d2", "d3"]);
    });
  });

  it("refuses U+0000 in every user id, name and description, and writes nothing", async () => {
    const id = await createActive("Nul target");
    const everyone = await createActive("Nul everyone", SegmentType.EVERYONE);
    await t.service.segments.addMembers({ segmentId: id, userIds: ["keeper"] });
    const users = async () => (await t.service.segments.getSegment({ segmentId: everyone })).segment?.memberCount;
    const before = await users();
    const nul = "bad\u0000id";

    await invalid(t.service.segments.addMembers({ segmentId: id, userIds: ["fine", nul] }), "user_ids[1]");
    await invalid(t.service.segments.removeMembers({ segmentId: id, userIds: [nul] }), "user_ids[0]");
    await invalid(t.service.membership.checkMembership({ userId: nul, segmentIds: [id] }), "user_id");
    await invalid(t.service.membership.batchCheckMembership({ segmentId: id, userIds: [nul] }), "user_ids[0]");
    const imported = await t.service.segments.importMembers([
      { segmentId: id, mode: ImportMode.ADD, userIds: [nul, "imported"] },
      { text: new TextEncoder().encode(`also\u0000bad\nimported2\n`) },
    ]);
    expect(imported).toMatchObject({ added: 2n, invalid: 2n });
    expect(imported.invalidLines.map((l) => [l.line, l.reason])).toEqual([
      [1n, "contains U+0000 (NUL)"],
      [3n, "contains U+0000 (NUL)"],
    ]);

    await invalid(t.service.segments.createSegment({ name: "nul\u0000name", type: SegmentType.STATIC }), "name");
    await invalid(
      t.service.segments.createSegment({ name: "Nul description", description: "a\u0000b", type: SegmentType.STATIC }),
      "description",
    );
    await invalid(
      t.service.segments.updateSegment({ segmentId: id, segment: { name: "x\u0000" }, updateMask: { paths: ["name"] } }),
      "segment.name",
    );
    await invalid(
      t.service.segments.updateSegment({ segmentId: id, segment: { description: "\u0000" }, updateMask: { paths: ["description"] } }),
      "segment.description",
    );

    const segment = (await t.service.segments.getSegment({ segmentId: id })).segment;
    expect(segment).toMatchObject({ name: "Nul target", description: "", memberCount: 3n, version: 2n });
    // Only the two valid imported ids joined the directory.
    expect(await users()).toBe((before ?? 0n) + 2n);
    const names = (await t.service.segments.listSegments({ pageSize: 1_000, nameContains: "nul" })).segments.map((s) => s.name);
    expect(names.sort()).toEqual(["Nul everyone", "Nul target"]);
  });

  describe("queries", () => {
    const createDynamic = (name: string, filter: FilterInit) =>
      t.service.segments.createSegment({ name, type: SegmentType.DYNAMIC, query: { kind: { case: "filter", value: filter } } });

    it("answers INVALID_ARGUMENT, not INTERNAL, for a Timestamp in year 10000 and a Duration of 1e12 s", async () => {
      const year10000 = eventWithin({ case: "since", value: { seconds: 253_402_300_800n } });
      const details = await invalid(createDynamic("Year 10000", year10000), "query.filter.event.within.since");
      expect(details).toContain("9999-12-31");
      const long = eventWithin({ case: "last", value: { seconds: 1_000_000_000_000n } });
      expect(await invalid(createDynamic("Long window", long), "query.filter.event.within.last")).toContain("3,660 days");
      const draft = (await t.service.segments.createSegment({ name: "Query target", type: SegmentType.DYNAMIC })).segment?.id ?? "";
      await invalid(
        t.service.segments.updateSegment({
          segmentId: draft,
          segment: { query: { kind: { case: "filter", value: long } } },
          updateMask: { paths: ["query"] },
        }),
        "segment.query.filter.event.within.last",
      );
      expect((await t.service.segments.getSegment({ segmentId: draft })).segment?.query).toBeUndefined();
      expect((await t.service.segments.listSegments({ nameContains: "year 10000" })).segments).toEqual([]);
    });

    it("refuses the declared limits: depth 41, a 20 MiB string, operator UNSPECIFIED, min_count 5M, name_contains of 100k", async () => {
      let deep: FilterInit = { kind: { case: "event", value: { name: "e" } } };
      for (let i = 1; i < 41; i++) deep = { kind: { case: "not", value: deep } };
      expect(await invalid(createDynamic("Deep", deep), `query.filter${".not".repeat(32)}`)).toContain("limit of 32");
      const long = (value: string): FilterInit => ({
        kind: {
          case: "property",
          value: { key: "plan", operator: ComparisonOperator.EQ, value: { kind: { case: "stringValue", value } } },
        },
      });
      expect(await invalid(createDynamic("Long", long("v".repeat(1_001))), "query.filter.property.value.string_value")).toContain(
        "at most 1,000 characters",
      );
      // 20 MiB is refused before it is even decoded: no request but a member list may be that large.
      const huge = await failure(createDynamic("Huge", long("v".repeat(20 << 20))));
      expect(huge.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(huge.details).toContain("limit of 2097152 bytes");
      const unspecified: FilterInit = { kind: { case: "property", value: { key: "plan" } } };
      await invalid(createDynamic("Unspecified", unspecified), "query.filter.property.operator");
      const many: FilterInit = {
        kind: { case: "all", value: { filters: [{ kind: { case: "event", value: { name: "e", minCount: 5_000_000 } } }] } },
      };
      expect(await invalid(createDynamic("Many", many), "query.filter.all.filters[0].event.min_count")).toContain("1,000,000");
      expect(await invalid(t.service.segments.listSegments({ nameContains: "n".repeat(100_000) }), "name_contains")).toContain("200");
    });

    it("lists twelve segments with ~900 KB filters in pages bounded in bytes, every one reachable", async () => {
      // 45 events of 20 conditions with 1,000-character values: about 900 KB of text, under every limit.
      const where = Array.from({ length: 20 }, (_, i) => ({
        key: `k${i}`,
        operator: ComparisonOperator.EQ,
        value: { kind: { case: "stringValue" as const, value: "v".repeat(1_000) } },
      }));
      const big: FilterInit = {
        kind: {
          case: "all",
          value: { filters: Array.from({ length: 45 }, () => ({ kind: { case: "event", value: { name: "e", where } } })) },
        },
      };
      const created: string[] = [];
      for (let i = 0; i < 12; i++) created.push((await createDynamic(`Big filter ${i}`, big)).segment?.id ?? "");

      const seen: string[] = [];
      let pageToken = "";
      let pages = 0;
      do {
        const page = await t.service.segments.listSegments({ pageToken });
        pages++;
        expect(page.segments.length).toBeGreaterThan(0);
        expect(toBinary(ListSegmentsResponseSchema, create(ListSegmentsResponseSchema, page)).byteLength).toBeLessThanOrEqual(
          4 * 1024 * 1024,
        );
        seen.push(...page.segments.map((s) => s.id));
        pageToken = page.nextPageToken;
      } while (pageToken !== "");
      expect(pages).toBeGreaterThanOrEqual(3);
      expect(seen).toEqual(expect.arrayContaining(created));
      expect(new Set(seen).size).toBe(seen.length);
    });
  });
});
