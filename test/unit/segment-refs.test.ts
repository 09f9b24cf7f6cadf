import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { FilterSchema } from "../../src/gen/segments/v1/segment_pb.js";
import { findCycle, isSegmentId, referencedSegments } from "../../src/query/segment-refs.js";

type FilterInit = MessageInitShape<typeof FilterSchema>;
const memberOf = (segmentId: string): FilterInit => ({ kind: { case: "memberOf", value: { segmentId } } });
const event: FilterInit = { kind: { case: "event", value: { name: "signup" } } };

describe("isSegmentId", () => {
  it.each([
    ["0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", true],
    ["0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B", false],
    ["0190a1b2c3d47e5f8a9b0c1d2e3f4a5b", false],
    ["", false],
  ])("%s → %s", (id, expected) => {
    expect(isSegmentId(id)).toBe(expected);
  });
});

describe("referencedSegments", () => {
  it("lists each member_of once, in order, through every kind of node", () => {
    const filter = create(FilterSchema, {
      kind: {
        case: "all",
        value: {
          filters: [
            memberOf("b"),
            event,
            { kind: { case: "not", value: memberOf("c") } },
            { kind: { case: "any", value: { filters: [memberOf("b"), memberOf("d")] } } },
          ],
        },
      },
    });
    expect(referencedSegments(filter)).toEqual(["b", "c", "d"]);
  });
  it("is empty for a filter without member_of", () => {
    expect(referencedSegments(create(FilterSchema, event))).toEqual([]);
  });
});

describe("findCycle", () => {
  const graph = (edges: Record<string, string[]>) => (id: string) => edges[id] ?? [];
  const cases: [string, Record<string, string[]>, string, string[] | undefined][] = [
    ["no references", {}, "a", undefined],
    ["a chain", { a: ["b"], b: ["c"] }, "a", undefined],
    ["a diamond (shared, not cyclic)", { a: ["b", "c"], b: ["d"], c: ["d"] }, "a", undefined],
    ["a self-reference", { a: ["a"] }, "a", ["a", "a"]],
    ["a direct cycle", { a: ["b"], b: ["a"] }, "a", ["a", "b", "a"]],
    ["a cycle through more segments", { a: ["x", "b"], b: ["c"], c: ["a"] }, "a", ["a", "b", "c", "a"]],
    ["a cycle a leads into", { a: ["b"], b: ["c"], c: ["b"] }, "a", ["a", "b", "c", "b"]],
  ];
  it.each(cases)("%s", (_name, edges, start, expected) => {
    expect(findCycle(start, graph(edges))).toEqual(expected);
  });
  it("walks a chain of 100,000 segments without overflowing the stack", () => {
    const next = (id: string) => {
      const n = Number(id);
      return n < 100_000 ? [String(n + 1)] : ["0"];
    };
    const cycle = findCycle("0", next);
    expect(cycle?.length).toBe(100_002);
    expect(cycle?.at(-1)).toBe("0");
  });
});
