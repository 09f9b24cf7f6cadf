/**
 * References between segments through `member_of` filter leaves: the id shape they must have,
 * which segments a filter names, and the cycle check run when a filter is saved. Pure: the
 * caller supplies how to look up another segment's references.
 */
import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { type Filter, QuerySchema } from "../gen/segments/v1/segment_pb.js";
import type { QueryDefinition } from "../model.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Whether `id` has the shape of a segment id (lower-case canonical UUID). */
export function isSegmentId(id: string): boolean {
  return UUID.test(id);
}

/** The distinct segment ids `filter`'s member_of leaves name, in first-seen order. */
export function referencedSegments(filter: Filter): string[] {
  const found = new Set<string>();
  const visit = (node: Filter): void => {
    const { kind } = node;
    switch (kind.case) {
      case "all":
      case "any":
        for (const child of kind.value.filters) visit(child);
        return;
      case "not":
        visit(kind.value);
        return;
      case "memberOf":
        found.add(kind.value.segmentId);
        return;
      default:
        return;
    }
  };
  visit(filter);
  return [...found];
}

/**
 * A cycle reachable from `start` through member_of references, as the path from `start` to the
 * repeated segment (e.g. [A, B, A], or [A, B, C, B] when A leads into a cycle it is not on), or
 * undefined when there is none. `references(id)` gives the segments id's filter names (empty for
 * unknown segments and SQL queries); for `start` it must give the filter being saved, not the
 * stored one. Each segment is expanded once, so the cost is linear in the reference graph.
 */
export function findCycle(start: string, references: (segmentId: string) => string[]): string[] | undefined {
  const done = new Set<string>();
  const path: string[] = [];
  const onPath = new Set<string>();
  // Iterative depth-first search: a chain of thousands of segments must not overflow the stack.
  const stack: { id: string; next: string[] }[] = [];
  const enter = (id: string): void => {
    path.push(id);
    onPath.add(id);
    stack.push({ id, next: [...references(id)].reverse() });
  };
  enter(start);
  while (stack.length > 0) {
    const top = stack[stack.length - 1] as { id: string; next: string[] };
    const child = top.next.pop();
    if (child === undefined) {
      stack.pop();
      path.pop();
      onPath.delete(top.id);
      done.add(top.id);
      continue;
    }
    if (onPath.has(child)) return [...path, child];
    if (!done.has(child)) enter(child);
  }
  return undefined;
}

/** The segments a stored query (its JSON form) names through member_of; none for SQL. */
export function storedReferences(query: QueryDefinition | null): string[] {
  if (query === null || !("filter" in query)) return [];
  const parsed = fromJson(QuerySchema, query as JsonValue);
  return parsed.kind.case === "filter" ? referencedSegments(parsed.kind.value) : [];
}
