/**
 * Analytics queries turned into membership: EvaluateSegment (a DYNAMIC segment's membership
 * becomes its query's result, one version), PopulateFromQuery (a STATIC segment gains or loses a
 * query's result), PreviewQuery (count and sample, writing nothing) and the evaluation history.
 * Query results stream in outside any transaction (known ids as uids, unknown ones staged), so a
 * run holds the segment's lock only for its final commit; a failed or cancelled run leaves the
 * membership and its version as they were, and is recorded.
 */
import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { KeyedMutex } from "../control/keyed-mutex.js";
import { nextSlice, sliceDue } from "../control/time-slice.js";
import { DomainError, FailedPreconditionError, InvalidArgumentError } from "../errors.js";
import { QuerySchema } from "../gen/segments/v1/segment_pb.js";
import { RoaringBitmap32 } from "../index/roaring.js";
import { UserDirectory } from "../index/user-directory.js";
import type { EvaluationSummary, QueryDefinition, Segment } from "../model.js";
import { compileFilter, type EventsSchema, type Plan } from "../query/filter-compiler.js";
import type { EvaluationRecord, EvaluationStore, EvaluationTriggerName, StoredEvaluation } from "../store/evaluation-store.js";
import {
  type ChangeKind,
  GatheredIds,
  type MemberChangeResult,
  type MemberService,
  QUERY_KINDS,
  type WithinCommit,
} from "./member-service.js";
import { signPageToken, tokenInteger, verifyPageToken } from "./page-token.js";
import type { SegmentState } from "./segment-state.js";

/** Runs one vetted query against the analytics source, handing its user ids over in chunks. */
export interface QueryRunner {
  runUserIdQuery(
    query: { text: string; params: unknown[] },
    options: { timeoutMs: number; rowCap: number; signal?: AbortSignal },
    onIds: (ids: import("../store/user-id-chunk.js").UserIdChunk) => Promise<void>,
  ): Promise<{ rows: number }>;
}

/** Time and size limits of query runs. */
export interface QueryLimits {
  timeoutMs: number;
  rowCap: number;
  previewTimeoutMs: number;
  previewRowCap: number;
}

/** Dependencies, built by the composition root. */
export interface EvaluationServiceDeps {
  state: SegmentState;
  members: MemberService;
  evaluations: EvaluationStore;
  runner: QueryRunner;
  clock: () => Date;
  limits: QueryLimits;
  schema?: Partial<EventsSchema>;
  /** Told of every finished evaluation (for /metrics): trigger, seconds, and the reason code of a failure. */
  recordEvaluation?: (trigger: EvaluationTriggerName, seconds: number, failure?: string) => void;
}

/** The outcome of a successful evaluation. */
export type EvaluationOutcome = EvaluationSummary;

const LIST_METHOD = "ListEvaluations";
const PREVIEW_SAMPLE_DEFAULT = 10;
const PREVIEW_SAMPLE_MAX = 1_000;

/** Evaluations, populations and previews of analytics queries. */
export class EvaluationService {
  /** Runs on one segment are serialized: a manual call during a scheduled run waits for it. */
  private readonly runs = new KeyedMutex();

  constructor(private readonly deps: EvaluationServiceDeps) {}

  /** Replaces a DYNAMIC segment's membership with its query's result, as one version; records the run. */
  async evaluate(id: string, trigger: EvaluationTriggerName, signal?: AbortSignal): Promise<EvaluationOutcome> {
    this.deps.state.require(id);
    return this.runs.run(id, () => this.evaluateNow(id, trigger, signal), signal);
  }

  private async evaluateNow(id: string, trigger: EvaluationTriggerName, signal?: AbortSignal): Promise<EvaluationOutcome> {
    const segment = this.deps.state.require(id);
    const kind = trigger === "SCHEDULE" ? QUERY_KINDS.schedule : QUERY_KINDS.evaluate;
    if (segment.type !== "DYNAMIC") {
      throw new FailedPreconditionError("type", `EvaluateSegment needs a DYNAMIC segment; this one is ${segment.type}`);
    }
    if (segment.query === null) {
      throw new FailedPreconditionError("query", "EvaluateSegment needs a query on the segment; set one with UpdateSegment first");
    }
    const startedAt = this.deps.clock();
    const started = performance.now();
    const timeZone = segment.schedule?.timeZone ?? "UTC";
    // A success is recorded in the transaction that commits its version: history, last_evaluation
    // and last_success_at (staleness) can never disagree with the membership, even across a crash.
    let succeeded: EvaluationSummary | undefined;
    const recordSuccess: WithinCommit = async (tx, result) => {
      succeeded = summaryOf(trigger, startedAt, performance.now() - started, result, null);
      await this.deps.evaluations.record(tx, recordOf(id, succeeded, "SUCCEEDED"));
      const before = this.deps.state.segments.get(id)?.lastSuccessAt ?? null;
      return { lastEvaluation: succeeded, lastSuccessAt: before !== null && before > startedAt ? before : startedAt };
    };
    try {
      const result = await this.apply(id, kind, "REPLACE", segment.query as QueryDefinition, startedAt, timeZone, signal, recordSuccess);
      this.deps.recordEvaluation?.(trigger, (performance.now() - started) / 1000);
      return succeeded ?? summaryOf(trigger, startedAt, performance.now() - started, result, null);
    } catch (error: unknown) {
      if (succeeded !== undefined) throw error; // committed: the run is recorded as it was
      this.deps.recordEvaluation?.(trigger, (performance.now() - started) / 1000, error instanceof DomainError ? error.reason : "INTERNAL");
      const current = this.deps.state.segments.get(id) ?? segment;
      const failed = summaryOf(trigger, startedAt, performance.now() - started, failedResult(current), reasonOf(error));
      await this.recordFailure(current, failed).catch(() => undefined);
      throw error;
    }
  }

  /** Adds a query's result to, or removes it from, a STATIC segment (one version). */
  async populate(
    id: string,
    query: QueryDefinition,
    mode: "ADD" | "REMOVE",
    timeZone: string,
    signal?: AbortSignal,
  ): Promise<MemberChangeResult> {
    this.deps.state.require(id);
    return this.apply(id, QUERY_KINDS.populate, mode, query, this.deps.clock(), timeZone, signal);
  }

  /** The distinct users a query yields and a sample of them; writes nothing. */
  async preview(
    query: QueryDefinition,
    timeZone: string,
    sampleSize: number,
    signal?: AbortSignal,
  ): Promise<{ count: number; sample: string[] }> {
    if (sampleSize < 0) throw new InvalidArgumentError("sample_size", "must not be negative");
    const plan = this.plan(query, this.deps.clock(), timeZone);
    const { limits } = this.deps;
    const standIns = new StandIns();
    const result = await this.combineInMemory(plan, standIns, { timeoutMs: limits.previewTimeoutMs, rowCap: limits.previewRowCap, signal });
    const want = Math.min(sampleSize === 0 ? PREVIEW_SAMPLE_DEFAULT : sampleSize, PREVIEW_SAMPLE_MAX);
    const sample: string[] = [];
    for (const uid of result) {
      if (sample.length >= want) break;
      sample.push(standIns.id(uid) ?? this.deps.state.directory.externalId(uid) ?? "");
    }
    return { count: result.size, sample };
  }

  /** One page of a segment's evaluation history, newest first (skipped scheduled runs included). */
  async list(id: string, pageSize: number, pageToken: string): Promise<{ runs: StoredEvaluation[]; nextPageToken: string }> {
    const { state, evaluations } = this.deps;
    state.require(id);
    if (pageSize < 0) throw new InvalidArgumentError("page_size", "must not be negative");
    const size = pageSize === 0 ? 50 : Math.min(pageSize, 1_000);
    let before: number | null = null;
    if (pageToken !== "") {
      const payload = verifyPageToken(pageToken, LIST_METHOD, state.pageTokenSecret);
      if (payload.id !== id) throw new InvalidArgumentError("page_token", "was issued for another segment");
      before = tokenInteger(payload, "s", 1, Number.MAX_SAFE_INTEGER);
    }
    const rows = await evaluations.list(id, before, size + 1);
    const runs = rows.slice(0, size);
    const last = runs[runs.length - 1];
    const more = rows.length > size && last !== undefined;
    return { runs, nextPageToken: more ? signPageToken(LIST_METHOD, { s: last.seq, id }, state.pageTokenSecret) : "" };
  }

  /** Applies a query's result to segment `id` as one version (the write path of evaluate and populate). */
  private async apply(
    id: string,
    kind: ChangeKind,
    mode: "ADD" | "REMOVE" | "REPLACE",
    query: QueryDefinition,
    at: Date,
    timeZone: string,
    signal: AbortSignal | undefined,
    withinCommit?: WithinCommit,
  ): Promise<MemberChangeResult> {
    const plan = this.plan(query, at, timeZone);
    const options = { timeoutMs: this.deps.limits.timeoutMs, rowCap: this.deps.limits.rowCap, signal };
    const { members, runner } = this.deps;
    if (plan.kind === "sql")
      return members.applyIdSet(
        id,
        kind,
        mode,
        signal,
        (gather) => runner.runUserIdQuery(plan, options, gather).then(() => undefined),
        withinCommit,
      );
    // member_of leaves are combined in memory: every SQL part gathers its own set, and the sets
    // are resolved to uids inside the final transaction, then combined with the other segments.
    const sets = new Map<object, GatheredIds>();
    for (const [node, query] of sqlParts(plan)) {
      const set = new GatheredIds(this.deps.state.directory);
      sets.set(node, set);
      await runner.runUserIdQuery(query, options, (ids) => members.gather(set, ids));
    }
    this.checkReferences(plan);
    return await members.applyResolvedSets(
      id,
      kind,
      mode,
      [...sets.values()],
      (resolved) => {
        const byNode = new Map([...sets.keys()].map((node, k) => [node, resolved[k] as RoaringBitmap32]));
        return combineWith(
          plan,
          UIDS,
          (node) => byNode.get(node) ?? new RoaringBitmap32(),
          (segmentId) => this.membersOf(segmentId),
        );
      },
      signal,
      withinCommit,
    );
  }

  /**
   * Runs a plan without writing anything: users the directory does not know get stand-in uids
   * (bounded by the row cap), so the plan combines bitmaps only — set algebra over strings held
   * the event loop for hundreds of ms on a large NOT.
   */
  private async combineInMemory(
    plan: Plan,
    standIns: StandIns,
    options: { timeoutMs: number; rowCap: number; signal?: AbortSignal | undefined },
  ): Promise<RoaringBitmap32> {
    const { directory } = this.deps.state;
    const results = new Map<object, RoaringBitmap32>();
    for (const [node, query] of sqlParts(plan)) {
      const result = new RoaringBitmap32();
      await this.deps.runner.runUserIdQuery(query, options, async (ids) => {
        // Sliced as in MemberService.gather: a chunk of a large result held the loop 200+ ms (fuzz).
        let n = 0;
        for (const userId of ids) {
          result.add(directory.lookup(userId) ?? standIns.uid(userId));
          if ((++n & 255) === 0 && sliceDue()) await nextSlice();
        }
      });
      results.set(node, result);
    }
    this.checkReferences(plan);
    return combineWith(
      plan,
      UIDS,
      (node) => results.get(node) ?? new RoaringBitmap32(),
      (segmentId) => this.membersOf(segmentId),
    );
  }

  /** The plan of a stored query: SQL as written (vetted when saved), a filter compiled. */
  private plan(query: QueryDefinition, evaluatedAt: Date, timeZone: string): Plan {
    if ("sql" in query) return { kind: "sql", text: query.sql, params: [] };
    const parsed = fromJson(QuerySchema, query as JsonValue);
    if (parsed.kind.case !== "filter") throw new InvalidArgumentError("query", "must set sql or filter");
    return compileFilter(parsed.kind.value, {
      evaluatedAt,
      timeZone,
      ...(this.deps.schema === undefined ? {} : { schema: this.deps.schema }),
    });
  }

  /** Every segment a plan's member_of leaves name must exist and be past DRAFT at evaluation. */
  private checkReferences(plan: Plan): void {
    for (const segmentId of memberOfIds(plan)) {
      const other = this.deps.state.segments.get(segmentId);
      if (other === undefined) throw new FailedPreconditionError("query", `member_of names segment ${segmentId}, which no longer exists`);
      if (other.status === "DRAFT")
        throw new FailedPreconditionError("query", `member_of names segment ${segmentId}, which is DRAFT; activate it first`);
    }
  }

  /** A segment's current members as a bitmap (EVERYONE: every known user). */
  private membersOf(segmentId: string): RoaringBitmap32 {
    const { state } = this.deps;
    const segment = state.segments.get(segmentId);
    return segment?.type === "EVERYONE" ? state.directory.allUids() : state.bitmaps.get(segmentId);
  }

  /** Writes a failed run to the history and, in memory and store, as the segment's last evaluation. */
  private async recordFailure(segment: Segment, summary: EvaluationSummary): Promise<void> {
    await this.deps.evaluations.record(this.deps.evaluations.db, recordOf(segment.id, summary, "FAILED"));
    const current = this.deps.state.segments.get(segment.id);
    if (current !== undefined) this.deps.state.segments.set(segment.id, { ...current, lastEvaluation: summary });
  }
}

function recordOf(segmentId: string, summary: EvaluationSummary, status: "SUCCEEDED" | "FAILED"): EvaluationRecord {
  return { segmentId, status, ...summary };
}

function summaryOf(
  trigger: EvaluationTriggerName,
  startedAt: Date,
  durationMs: number,
  result: { added: number; removed: number; memberCount: number; version: number },
  error: string | null,
): EvaluationSummary {
  return {
    trigger,
    startedAt,
    durationMs: Math.round(durationMs),
    added: result.added,
    removed: result.removed,
    total: result.memberCount,
    version: result.version,
    error,
  };
}

function failedResult(segment: Segment) {
  return { added: 0, removed: 0, memberCount: segment.memberCount, version: segment.version };
}

/** What a failed run's history says: the domain error's message; anything else stays internal. */
function reasonOf(error: unknown): string {
  return error instanceof DomainError ? error.message : "internal error";
}

/** The SQL parts of a plan, each keyed by the plan object it belongs to. */
function sqlParts(plan: Plan): [object, { text: string; params: unknown[] }][] {
  switch (plan.kind) {
    case "sql":
      return [[plan, plan]];
    case "member_of":
      return [];
    case "and":
    case "or":
      return plan.children.flatMap(sqlParts);
    case "not":
      return [[plan.universe, plan.universe], ...sqlParts(plan.child)];
  }
}

function memberOfIds(plan: Plan): string[] {
  switch (plan.kind) {
    case "sql":
      return [];
    case "member_of":
      return [plan.segmentId];
    case "and":
    case "or":
      return plan.children.flatMap(memberOfIds);
    case "not":
      return memberOfIds(plan.child);
  }
}

/** How one kind of result set is combined: the operations a plan needs. */
interface SetAlgebra<T> {
  and(a: T, b: T): T;
  or(a: T, b: T): T;
  minus(a: T, b: T): T;
}

/** The plan's result, from each SQL part's result and each referenced segment's members. */
function combineWith<T>(plan: Plan, ops: SetAlgebra<T>, sql: (node: object) => T, members: (segmentId: string) => T): T {
  const recurse = (p: Plan) => combineWith(p, ops, sql, members);
  switch (plan.kind) {
    case "sql":
      return sql(plan);
    case "member_of":
      return members(plan.segmentId);
    case "and":
      return plan.children.map(recurse).reduce(ops.and);
    case "or":
      return plan.children.map(recurse).reduce(ops.or);
    case "not":
      return ops.minus(sql(plan.universe), recurse(plan.child));
  }
}

const UIDS: SetAlgebra<RoaringBitmap32> = {
  and: (a, b) => RoaringBitmap32.and(a, b),
  or: (a, b) => RoaringBitmap32.or(a, b),
  minus: (a, b) => RoaringBitmap32.andNot(a, b),
};

/** The highest uid there can be; stand-ins count down from it, far above any uid the store assigns. */
const TOP_UID = 2 ** 32 - 2;

/**
 * Preview only: uids standing in for users the directory does not know, and back. The ids live in
 * a UserDirectory (stand-in k is "uid" k there): a Map of a million strings rehashed for 100+ ms
 * in one step as it doubled (fuzz), where the directory's table regrows a few slots at a time.
 */
class StandIns {
  private readonly ids = new UserDirectory({ everyone: false });

  /** The stand-in uid of `userId`, made on first sight. */
  uid(userId: string): number {
    let k = this.ids.lookup(userId);
    if (k === undefined) {
      k = this.ids.size;
      this.ids.add(k, userId);
    }
    return TOP_UID - k;
  }

  /** The user a stand-in uid names; undefined for a real uid. */
  id(uid: number): string | undefined {
    return uid > TOP_UID - this.ids.size ? this.ids.externalId(TOP_UID - uid) : undefined;
  }
}
