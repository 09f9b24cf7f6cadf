/**
 * bulk: how fast members go in. Ours is AddMembers over gRPC in 100,000-id calls, each one a
 * durable version (new users get uids in the same transaction); Redis is pipelined SADD of the
 * same strings; Postgres is COPY of (segment_id, uid) rows into a table with a primary key. For
 * the dense segment, whose every id is a new user, also a COPY of its (uid, external id) rows into
 * a table with no index: the fastest way Postgres stores a user list (issue 11's yardstick).
 */
import type { BenchContext } from "../lib/context.js";
import type { Row } from "../lib/report.js";

/** Reports the load times measured during set-up as ids per second. */
export async function bulk(ctx: BenchContext): Promise<Row[]> {
  const rows: Row[] = [];
  for (const segment of ctx.segments) {
    const perSecond = (ms: number | undefined) => (ms === undefined ? undefined : segment.spec.size / (ms / 1000));
    const figure = `AddMembers, ${segment.spec.key} (${segment.spec.size.toLocaleString("en-US")} ids${segment.spec.key === "dense" ? ", all new users" : ""})`;
    const ours = perSecond(segment.loadMs.ours) ?? 0;
    rows.push(
      {
        scenario: "bulk",
        figure,
        unit: "ids/s",
        better: "higher",
        ours,
        baseline: "Redis SADD, pipelined",
        baselineValue: perSecond(segment.loadMs.redis),
      },
      {
        scenario: "bulk",
        figure,
        unit: "ids/s",
        better: "higher",
        ours,
        baseline: "Postgres COPY",
        baselineValue: perSecond(segment.loadMs.postgres),
      },
    );
    if (segment.loadMs.usersCopy !== undefined) {
      rows.push({
        scenario: "bulk",
        figure,
        unit: "ids/s",
        better: "higher",
        ours,
        baseline: "Postgres COPY of the (uid, external id) rows into an index-free table",
        baselineValue: perSecond(segment.loadMs.usersCopy),
      });
    }
  }
  return rows;
}
