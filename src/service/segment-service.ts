/**
 * Segment definitions and lifecycle: create, read, list, update, delete, the five transitions,
 * and the audit trail every one of those writes in the same transaction as its change.
 */

import type { KeyedMutex } from "../control/keyed-mutex.js";
import { FailedPreconditionError, InvalidArgumentError } from "../errors.js";
import type { HistoryEntry, QueryDefinition, Schedule, Segment, SegmentStatus, SegmentType } from "../model.js";
import { findCycle, storedReferences } from "../query/segment-refs.js";
import { checkSelectSql } from "../query/sql-guard.js";
import type { SegmentStore } from "../store/segment-store.js";
import { newSegmentId } from "./ids.js";
import { nextStatus, type Transition, transitionAction } from "./lifecycle.js";
import { type ListSegmentsPage, type ListSegmentsQuery, listSegmentsPage } from "./list-segments.js";
import { decodeHistoryToken, encodeHistoryToken, type HistoryPage, historyPageSize } from "./segment-history.js";
import type { Freshness, SegmentState } from "./segment-state.js";
import { checkQuery, checkSchedule, validDescription, validName } from "./validation.js";

/** A segment's editable definition. */
export interface SegmentDefinition {
  name: string;
  description: string;
  type: SegmentType | undefined;
  query: QueryDefinition | null;
  schedule: Schedule | null;
}

/** The UpdateSegment mask paths. */
export const UPDATE_PATHS = ["name", "description", "type", "query", "schedule"] as const;
type UpdatePath = (typeof UPDATE_PATHS)[number];

/** Where each field may change (issue: name and description anywhere but ARCHIVED, …). */
const EDITABLE_IN: Record<UpdatePath, readonly SegmentStatus[]> = {
  name: ["DRAFT", "ACTIVE", "PAUSED"],
  description: ["DRAFT", "ACTIVE", "PAUSED"],
  type: ["DRAFT"],
  // A live segment's query can be fixed: the change takes effect at its next evaluation.
  query: ["DRAFT", "ACTIVE", "PAUSED"],
  schedule: ["DRAFT", "ACTIVE", "PAUSED"],
};

/** Who made a change, as the audit trail records it. */
export type Actor = Pick<HistoryEntry, "caller" | "onBehalfOf">;

/** Dependencies, built by the composition root. */
export interface SegmentServiceDeps {
  state: SegmentState;
  store: SegmentStore;
  clock: () => Date;
  /** Shared with MemberService: lifecycle and member changes of one segment serialize. */
  locks: KeyedMutex;
  /** Plans (EXPLAIN, not run) a vetted SQL query on the analytics source; absent in unit set-ups. */
  planQuery?: (sql: string) => Promise<void>;
}

/** Segment definitions, lifecycle and audit trail. */
export class SegmentService {
  constructor(private readonly deps: SegmentServiceDeps) {}

  /** Creates a segment in DRAFT. */
  async createSegment(input: SegmentDefinition, actor: Actor, signal?: AbortSignal): Promise<Segment> {
    const name = validName(input.name);
    const description = validDescription(input.description);
    if (input.type === undefined) throw new InvalidArgumentError("type", "is required: STATIC, DYNAMIC or EVERYONE");
    checkDefinition(input.type, input.query, input.schedule);
    await this.vetQuery(undefined, input.query, "query");
    const now = this.deps.clock();
    const segment = newSegment({ name, description, type: input.type, query: input.query, schedule: input.schedule }, now);
    const fields = ["name", "type", ...(description === "" ? [] : ["description"]), ...(input.query === null ? [] : ["query"])];
    if (input.schedule !== null) fields.push("schedule");
    await this.deps.store.insertSegment(segment, entry(now, "CREATE", actor, null, "DRAFT", fields), signal);
    this.deps.state.segments.set(segment.id, segment);
    return segment;
  }

  /** The segment with `id`. */
  getSegment(id: string): Segment {
    return this.deps.state.require(id);
  }

  /** How fresh `segment` is now: the `stale` flag and its next scheduled evaluation. */
  freshness(segment: Segment): Freshness {
    return this.deps.state.freshness(segment, this.deps.clock());
  }

  /** One page of segments in creation order. */
  listSegments(query: ListSegmentsQuery): ListSegmentsPage {
    return listSegmentsPage(this.deps.state.segments.values(), query, this.deps.state.pageTokenSecret);
  }

  /** Changes the fields named in `paths` to the values in `input`. */
  async updateSegment(
    id: string,
    paths: readonly string[],
    input: SegmentDefinition,
    actor: Actor,
    signal?: AbortSignal,
  ): Promise<Segment> {
    const mask = checkMask(paths);
    this.deps.state.require(id);
    return this.deps.locks.run(
      id,
      async () => {
        const segment = this.deps.state.require(id);
        for (const path of mask) {
          if (!EDITABLE_IN[path].includes(segment.status)) {
            throw new FailedPreconditionError(
              "status",
              `${path} cannot change while the segment is ${segment.status}; it can change in ${EDITABLE_IN[path].join(", ")}`,
            );
          }
        }
        const next = applyUpdate(segment, mask, input);
        if (mask.includes("query")) await this.vetQuery(id, next.query, "segment.query");
        const changed = mask.filter((path) => JSON.stringify(next[fieldOf(path)]) !== JSON.stringify(segment[fieldOf(path)]));
        if (changed.length === 0) return segment;
        const now = this.deps.clock();
        const updated: Segment = { ...next, updatedAt: now };
        await this.deps.store.updateSegment(updated, entry(now, "UPDATE", actor, segment.status, segment.status, changed), signal);
        this.deps.state.segments.set(id, updated);
        return updated;
      },
      signal,
    );
  }

  /** Deletes a DRAFT segment and everything stored about it; other statuses must be archived. */
  async deleteSegment(id: string, signal?: AbortSignal): Promise<void> {
    this.deps.state.require(id);
    await this.deps.locks.run(
      id,
      async () => {
        const segment = this.deps.state.require(id);
        if (segment.status !== "DRAFT") {
          throw new FailedPreconditionError(
            "status",
            `DeleteSegment removes DRAFT segments only; this one is ${segment.status}: archive it instead (ArchiveSegment keeps its data and can be undone)`,
          );
        }
        await this.deps.store.deleteSegment(id, signal);
        this.deps.state.forgetSegment(id);
      },
      signal,
    );
  }

  /** Moves a segment through its lifecycle (activate, pause, resume, archive, restore). */
  async transition(id: string, transition: Transition, actor: Actor, signal?: AbortSignal): Promise<Segment> {
    this.deps.state.require(id);
    return this.deps.locks.run(
      id,
      async () => {
        const segment = this.deps.state.require(id);
        const status = nextStatus(segment.status, transition);
        if (status === "ACTIVE") checkActivatable(segment, transition);
        const now = this.deps.clock();
        const archivedAt = status === "ARCHIVED" ? now : null;
        const next: Segment = { ...segment, status, updatedAt: now, archivedAt };
        await this.deps.store.updateSegment(next, entry(now, transitionAction(transition), actor, segment.status, status, []), signal);
        this.deps.state.publishSegment(next);
        return next;
      },
      signal,
    );
  }

  /**
   * Vets a query when it is saved: SQL through the real Postgres parser (one read-only SELECT
   * with a user_id column); a filter's member_of leaves must name existing segments and, for a
   * segment being updated, must not lead back to it.
   */
  async vetQuery(id: string | undefined, query: QueryDefinition | null, field: string): Promise<void> {
    if (query === null) return;
    if ("sql" in query) {
      await checkSelectSql(query.sql, `${field}.sql`);
      await this.deps.planQuery?.(query.sql).catch((error: unknown) => {
        // The planner names what is wrong (a missing table or column, a denied table).
        throw error instanceof InvalidArgumentError ? new InvalidArgumentError(`${field}.sql`, error.description) : error;
      });
      return;
    }
    const { segments } = this.deps.state;
    const named = storedReferences(query);
    for (const other of named) {
      if (!segments.has(other)) throw new InvalidArgumentError(`${field}.filter`, `member_of names segment ${other}, which does not exist`);
    }
    if (id === undefined) return;
    const cycle = findCycle(id, (sid) => (sid === id ? named : storedReferences(segments.get(sid)?.query ?? null)));
    if (cycle !== undefined) {
      throw new InvalidArgumentError(`${field}.filter`, `member_of makes a cycle: ${cycle.join(" → ")}; a segment cannot depend on itself`);
    }
  }

  /** One page of a segment's audit trail, newest first. */
  async listHistory(id: string, pageSize: number, pageToken: string): Promise<HistoryPage> {
    this.deps.state.require(id);
    const size = historyPageSize(pageSize);
    const secret = this.deps.state.pageTokenSecret;
    const before = decodeHistoryToken(pageToken, id, secret);
    const rows = await this.deps.store.listHistory(id, before, size + 1);
    const entries = rows.slice(0, size);
    const last = entries[entries.length - 1];
    return { entries, nextPageToken: rows.length > size && last !== undefined ? encodeHistoryToken(last.seq, id, secret) : "" };
  }
}

/** A new DRAFT segment with an empty membership (version 0). */
export function newSegment(definition: SegmentDefinition & { type: SegmentType }, now: Date): Segment {
  return {
    ...definition,
    id: newSegmentId(now),
    status: "DRAFT",
    memberCount: 0,
    version: 0,
    versionAt: null,
    createdAt: now,
    updatedAt: now,
    archivedAt: null,
    lastEvaluation: null,
    lastSuccessAt: null,
  };
}

function entry(
  at: Date,
  action: HistoryEntry["action"],
  actor: Actor,
  from: SegmentStatus | null,
  to: SegmentStatus,
  fields: string[],
): HistoryEntry {
  return { at, action, caller: actor.caller, onBehalfOf: actor.onBehalfOf, fromStatus: from, toStatus: to, changedFields: fields };
}

/** Request-level consistency of a definition (INVALID_ARGUMENT: the request itself is wrong). */
function checkDefinition(type: SegmentType, query: QueryDefinition | null, schedule: Schedule | null): void {
  if (type !== "DYNAMIC" && query !== null)
    throw new InvalidArgumentError("query", `only DYNAMIC segments have a query; this one is ${type}`);
  if (type !== "DYNAMIC" && schedule !== null)
    throw new InvalidArgumentError("schedule", `only DYNAMIC segments have a schedule; this one is ${type}`);
  if (query !== null) checkQuery(query);
  if (schedule !== null) checkSchedule(schedule);
}

/** What a segment needs before it may go live. */
function checkActivatable(segment: Segment, transition: Transition): void {
  if (segment.type === "DYNAMIC" && segment.query === null) {
    throw new FailedPreconditionError("query", `${transition} needs a query on a DYNAMIC segment; set one with UpdateSegment first`);
  }
}

function checkMask(paths: readonly string[]): UpdatePath[] {
  if (paths.length === 0) throw new InvalidArgumentError("update_mask", `must name at least one of ${UPDATE_PATHS.join(", ")}`);
  for (const path of paths) {
    if (!(UPDATE_PATHS as readonly string[]).includes(path)) {
      throw new InvalidArgumentError("update_mask", `unknown path ${JSON.stringify(path)}; allowed: ${UPDATE_PATHS.join(", ")}`);
    }
  }
  return [...new Set(paths)] as UpdatePath[];
}

function fieldOf(path: UpdatePath): keyof Segment {
  return path;
}

/** The segment with the masked fields replaced, validated as a whole. */
function applyUpdate(segment: Segment, mask: readonly UpdatePath[], input: SegmentDefinition): Segment {
  const next = { ...segment };
  for (const path of mask) {
    switch (path) {
      case "name":
        next.name = validName(input.name, "segment.name");
        break;
      case "description":
        next.description = validDescription(input.description, "segment.description");
        break;
      case "type":
        if (input.type === undefined) throw new InvalidArgumentError("segment.type", "is required when update_mask names type");
        if (segment.version > 0) {
          throw new FailedPreconditionError(
            "members",
            `type cannot change once the segment has had members (it is at version ${segment.version})`,
          );
        }
        next.type = input.type;
        break;
      case "query":
        next.query = input.query;
        break;
      case "schedule":
        next.schedule = input.schedule;
        break;
    }
  }
  if (
    !mask.includes("type") &&
    next.type !== "DYNAMIC" &&
    (mask.includes("query") || mask.includes("schedule")) &&
    (next.query ?? next.schedule) !== null
  ) {
    throw new FailedPreconditionError("type", `a ${next.type} segment has no query or schedule; only DYNAMIC segments do`);
  }
  checkDefinition(next.type, next.query, next.schedule);
  if (next.status === "ACTIVE" && next.type === "DYNAMIC" && next.query === null) {
    throw new FailedPreconditionError("query", "an ACTIVE DYNAMIC segment needs a query; pause it first to clear the query");
  }
  return next;
}
