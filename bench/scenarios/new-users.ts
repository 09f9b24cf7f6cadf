/**
 * new-users: issue 11's yardstick for new users, paired. Each round adds ids no user has yet to a
 * new STATIC segment — AddMembers in 100,000-id calls, one at a time, each a durable version that
 * gives its new users their uids, requests encoded before the clock — and COPYs the same
 * (uid, external id) rows into a fresh index-free table, back to back, the order alternating from
 * round to round. Each round gives one ratio and the figure is their median (bench/lib/paired.ts):
 * one COPY here read anywhere from 1.9M to 3.0M rows/s within minutes, so the single-shot ratio
 * in `bulk` says as much about the minute as about the service.
 */

import { createClient } from "../../src/client/client.js";
import { SegmentType } from "../../src/gen/segments/v1/segment_pb.js";
import { SegmentService } from "../../src/gen/segments/v1/segment_service_pb.js";
import type { BenchContext } from "../lib/context.js";
import { userId } from "../lib/dataset.js";
import { encodeAddIds, rawClient, sendAdd } from "../lib/encoded.js";
import { median, pairedRatios, pairedValues } from "../lib/paired.js";
import type { Row } from "../lib/report.js";

const ROUNDS = 5;
/** The first user number of round 0: past any dataset (and below 2^31, where userId's numbers stay distinct). */
const FIRST_NUMBER = 1_000_000_000;
const CALL_IDS = 100_000;

/** Paired rounds of new users: ours vs COPY into an index-free table. */
export async function newUsers(ctx: BenchContext, log: (line: string) => void): Promise<Row[]> {
  // A tenth of the dataset per round, 1,000 to 1M ids, in calls of up to 100,000 like bulk's.
  const perRound = Math.min(1_000_000, Math.max(1_000, Math.round(ctx.options.users / 10 / 1_000) * 1_000));
  const callIds = Math.min(CALL_IDS, perRound);
  const figure = `AddMembers of ${perRound.toLocaleString("en-US")} new users in ${callIds.toLocaleString("en-US")}-id calls, ${ROUNDS} paired rounds`;
  const baseline = "Postgres COPY of the (uid, external id) rows into an index-free table, same round";
  const ours: number[] = [];
  const copy: (number | undefined)[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    // Ids shaped like the dataset's (half `user_<n>`, half UUIDs), numbered far past it.
    const ids = Array.from({ length: perRound }, (_, n) => userId(ctx.options.seed, FIRST_NUMBER + round * perRound + n));
    const measureOurs = async () => {
      const before = await usersKnown(ctx);
      const ms = await addAll(ctx, `bench new users ${round}`, ids, callIds);
      const created = (await usersKnown(ctx)) - before;
      if (created !== perRound) throw new Error(`new-users: round ${round + 1} created ${created} users, not ${perRound}`);
      return perRound / (ms / 1000);
    };
    // Without the baseline Postgres, ours is still measured and the row says the baseline was skipped.
    const measureCopy = async () => {
      if (ctx.postgres === undefined) return undefined;
      const rows = (function* () {
        for (let from = 0; from < perRound; from += callIds) yield ids.slice(from, from + callIds).map((id, i) => ({ uid: from + i, id }));
      })();
      return perRound / ((await ctx.postgres.copyUsers(rows)) / 1000);
    };
    // Alternating which goes first, so a drift in the machine's speed during a round favours neither.
    let o: number;
    let c: number | undefined;
    if (round % 2 === 0) {
      o = await measureOurs();
      c = await measureCopy();
    } else {
      c = await measureCopy();
      o = await measureOurs();
    }
    ours.push(o);
    copy.push(c);
    log(
      `new-users round ${round + 1}: ours ${Math.round(o).toLocaleString("en-US")} ids/s${c === undefined ? "" : `, COPY ${Math.round(c).toLocaleString("en-US")} rows/s (${(o / c).toFixed(3)}×)`}`,
    );
  }
  if (ctx.postgres !== undefined)
    log(
      `new-users ratios: ${pairedRatios(ours, copy)
        .map((r) => r.toFixed(3))
        .join(", ")}`,
    );
  const values = ctx.postgres === undefined ? { ours: median(ours), baselineValue: undefined } : pairedValues(ours, copy);
  return [{ scenario: "new-users", figure, unit: "ids/s", better: "higher", baseline, ...values }];
}

/** Adds `ids` to a new ACTIVE STATIC segment in calls of `callIds` (a divisor of their count), one at a time; returns the ms spent in the calls. */
async function addAll(ctx: BenchContext, name: string, ids: string[], callIds: number): Promise<number> {
  const client = createClient(SegmentService, ctx.service.address);
  const raw = rawClient(ctx.service.address);
  try {
    const { segment } = await client.createSegment({ name, type: SegmentType.STATIC });
    const id = segment?.id ?? "";
    await client.activateSegment({ segmentId: id });
    const requests: Buffer[] = [];
    for (let from = 0; from < ids.length; from += callIds) requests.push(encodeAddIds(id, ids.slice(from, from + callIds)));
    let elapsed = 0;
    for (const request of requests) {
      const started = performance.now();
      const result = await sendAdd(raw, request);
      elapsed += performance.now() - started;
      if (result.added !== BigInt(callIds)) throw new Error(`new-users: a call of ${callIds} new ids added ${result.added}`);
    }
    return elapsed;
  } finally {
    raw.close();
    client.close();
  }
}

/** How many users the service's directory holds (its `segments_users` gauge). */
async function usersKnown(ctx: BenchContext): Promise<number> {
  return (await ctx.service.metrics()).get("segments_users") ?? Number.NaN;
}
