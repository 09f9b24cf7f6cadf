/**
 * Runs the scheduled evaluations of DYNAMIC segments, on exactly one replica each.
 *
 * Time is injected: `tick(now)` does one pass at the instant it is given, so tests drive the
 * scheduler with a fake clock and no timers. node-cron is used only to parse and validate
 * expressions (through cron-time.ts), never for its timers: its tasks read the real clock and
 * would run every due job on every replica. `start()` adds the one real timer, which wakes at the
 * earliest next_run_at (at most every `maxSleepMs`) and calls `tick(clock())`.
 *
 * One pass: arm segments whose schedule is new or changed (next_run_at := first fire after now),
 * disarm those that no longer run on schedule, then claim each due run in the database
 * (schedule-store.ts) — start it, or record it SKIPPED (PAUSED, or the previous run still going) —
 * and start the claimed runs without waiting for them. A run missed while the service was down is
 * claimed once and next_run_at moves to the first fire after now: one catch-up run, not one per
 * missed tick.
 *
 * Who records what: `evaluate` (the evaluation service) records its own SUCCEEDED or FAILED row,
 * as it does for manual runs, and resolves on success / rejects on failure. The scheduler records
 * SKIPPED rows, and keeps the failure count, the last error and the backoff on the segment row.
 */
import type { Logger } from "pino";
import type { ScheduleStore } from "../store/schedule-store.js";
import {
  DEFAULT_SCHEDULE_POLICY,
  decideDue,
  desiredKey,
  firstRunAt,
  type ScheduledSegment,
  type SchedulePolicy,
  settleRun,
} from "./schedule-policy.js";

/** The timer functions `start()` uses; tests may pass their own. */
export interface SchedulerTimer {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** What the scheduler needs. */
export interface SchedulerDeps {
  clock: () => Date;
  store: ScheduleStore;
  log: Logger;
  /** Runs one evaluation and records it; rejects when the run failed. */
  evaluate: (segmentId: string, trigger: "SCHEDULE") => Promise<void>;
  /** The segments this process knows (its in-memory state); only these are armed and run here. */
  listSegments: () => Iterable<ScheduledSegment>;
  /** Told each segment's stored next run (and the schedule key it belongs to) after every pass and run. */
  onPlanned?: (id: string, planned: { key: string | null; nextRunAt: Date | null }) => void;
  /** Told how late (ms after its due time) each scheduled run starts, for /metrics. */
  onStarted?: (lateMs: number) => void;
  policy?: Partial<SchedulePolicy>;
  /** Longest sleep of the production loop between passes (default 30 s). */
  maxSleepMs?: number;
  timer?: SchedulerTimer;
}

/** What one pass did, for logs and tests. */
export interface TickResult {
  armed: number;
  disarmed: number;
  started: string[];
  skipped: string[];
}

const realTimer: SchedulerTimer = {
  setTimeout: (fn, ms) => {
    const handle = setTimeout(fn, ms);
    handle.unref();
    return handle;
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** Scheduled evaluation of DYNAMIC segments, coordinated through the database. */
export class Scheduler {
  private readonly policy: SchedulePolicy;
  private readonly maxSleepMs: number;
  private readonly timer: SchedulerTimer;
  /** Runs going in this process, by segment id. */
  private readonly running = new Map<string, Promise<void>>();
  private handle: unknown = null;
  private stopped = true;
  private pass: Promise<unknown> = Promise.resolve();
  /** Earliest next_run_at seen in the last pass; where the loop wakes. */
  private earliest: Date | null = null;

  constructor(private readonly deps: SchedulerDeps) {
    this.policy = { ...DEFAULT_SCHEDULE_POLICY, ...deps.policy };
    this.maxSleepMs = deps.maxSleepMs ?? 30_000;
    this.timer = deps.timer ?? realTimer;
  }

  /** One pass at `now`: arm, disarm, claim and start due runs. Resolves once claims are made; runs continue (see `idle`). */
  async tick(now: Date): Promise<TickResult> {
    const result: TickResult = { armed: 0, disarmed: 0, started: [], skipped: [] };
    const stored = new Map((await this.deps.store.armed()).map((a) => [a.id, a]));
    const known = new Set<string>();
    let earliest: Date | null = null;
    for (const segment of this.deps.listSegments()) {
      known.add(segment.id);
      const have = stored.get(segment.id);
      const haveKey = have?.armed ?? null;
      const want = desiredKey(segment);
      if (want !== haveKey || (want !== null && have?.nextRunAt === null)) {
        const next = firstRunAt(segment, now);
        const set = await this.deps.store.arm(
          segment.id,
          {
            type: segment.type,
            status: segment.status,
            cron: segment.schedule?.cron ?? null,
            timeZone: segment.schedule?.timeZone ?? null,
            armed: haveKey,
          },
          want,
          next,
        );
        if (set && want !== null) result.armed++;
        if (set && want === null) result.disarmed++;
        if (set) stored.set(segment.id, { id: segment.id, armed: want, nextRunAt: next });
      }
    }
    for (const entry of stored.values()) {
      if (!known.has(entry.id) || entry.nextRunAt === null) continue;
      if (entry.nextRunAt > now) {
        if (earliest === null || entry.nextRunAt < earliest) earliest = entry.nextRunAt;
        continue;
      }
      const id = entry.id;
      const decision = await this.deps.store.claim(id, now, (row) => decideDue(row, now, this.policy, this.running.has(id)));
      if (decision.kind === "skip") {
        result.skipped.push(id);
        this.deps.log.info({ segmentId: id, reason: decision.reason }, "scheduled evaluation skipped");
      } else if (decision.kind === "run") {
        result.started.push(id);
        this.deps.onStarted?.(now.getTime() - entry.nextRunAt.getTime());
        this.startRun(id, decision.runningSince);
      }
      if (decision.kind === "skip" || decision.kind === "run") {
        stored.set(id, { ...entry, nextRunAt: decision.nextRunAt });
        if (decision.nextRunAt !== null && (earliest === null || decision.nextRunAt < earliest)) earliest = decision.nextRunAt;
      }
    }
    this.earliest = earliest;
    for (const entry of stored.values()) this.deps.onPlanned?.(entry.id, { key: entry.armed, nextRunAt: entry.nextRunAt });
    return result;
  }

  /** Resolves when every run started by this process so far has ended and been settled. */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.all(this.running.values());
  }

  /** Starts the production loop: a pass now, then one at the earliest next_run_at (at most every maxSleepMs). */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule(0);
  }

  /** Stops the loop and waits for the pass and the runs in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.handle !== null) this.timer.clearTimeout(this.handle);
    this.handle = null;
    await this.pass;
    await this.idle();
  }

  private schedule(delayMs: number): void {
    this.handle = this.timer.setTimeout(() => {
      this.handle = null;
      this.pass = this.loopOnce();
    }, delayMs);
  }

  private async loopOnce(): Promise<void> {
    try {
      await this.tick(this.deps.clock());
    } catch (error: unknown) {
      // The database may be away; the next pass tries again.
      this.deps.log.warn({ err: error }, "scheduler pass failed");
    }
    if (this.stopped) return;
    const now = this.deps.clock().getTime();
    const until = this.earliest === null ? this.maxSleepMs : this.earliest.getTime() - now;
    this.schedule(Math.min(Math.max(until, 0), this.maxSleepMs));
  }

  private startRun(id: string, runningSince: Date): void {
    const run = this.runOne(id, runningSince).finally(() => this.running.delete(id));
    this.running.set(id, run);
  }

  private async runOne(id: string, runningSince: Date): Promise<void> {
    let error: string | null = null;
    try {
      await this.deps.evaluate(id, "SCHEDULE");
    } catch (cause: unknown) {
      error = cause instanceof Error ? cause.message : String(cause);
      this.deps.log.warn({ segmentId: id, err: cause }, "scheduled evaluation failed");
    }
    try {
      let key: string | null = null;
      const settled = await this.deps.store.finish(id, (row) => {
        key = row.armed;
        return settleRun(row, runningSince, { error }, this.deps.clock(), this.policy);
      });
      if (settled !== null) this.deps.onPlanned?.(id, { key, nextRunAt: settled.nextRunAt });
      if (settled !== null && settled.failures > 0) {
        this.deps.log.info({ segmentId: id, failures: settled.failures, retryAt: settled.nextRunAt }, "scheduled evaluation backs off");
      }
    } catch (cause: unknown) {
      // The lease expires and the segment's next due run starts; nothing else to do here.
      this.deps.log.warn({ segmentId: id, err: cause }, "could not settle a scheduled run");
    }
  }
}
