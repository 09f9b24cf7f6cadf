/**
 * memory: bytes per member once the dataset is loaded. Ours twice: the bitmaps alone, and the
 * whole process's RSS growth (bitmaps plus the user directory of external ids). Against Redis
 * used_memory growth and the Postgres table-plus-index size.
 */
import type { BenchContext } from "../lib/context.js";
import type { Row } from "../lib/report.js";

/** Measures memory per member across the loaded segments. */
export async function memory(ctx: BenchContext): Promise<Row[]> {
  const members = ctx.segments.reduce((sum, s) => sum + s.spec.size, 0);
  const metrics = await ctx.service.metrics();
  const bitmapBytes = metrics.get("segments_bitmap_bytes") ?? 0;
  const rssGrowth = (metrics.get("process_resident_memory_bytes") ?? 0) - ctx.empty.rss;
  const redisBytes =
    ctx.redis === undefined || ctx.empty.redisUsedMemory === undefined
      ? undefined
      : (await ctx.redis.usedMemory()) - ctx.empty.redisUsedMemory;
  const postgresBytes = await ctx.postgres?.relationSize();
  const perMember = (bytes: number | undefined) => (bytes === undefined ? undefined : bytes / members);
  const rows: Row[] = [];
  for (const [figure, ours] of [
    ["bytes per member: bitmaps", perMember(bitmapBytes) ?? 0],
    ["bytes per member: process RSS growth (bitmaps + directory)", perMember(rssGrowth) ?? 0],
  ] as const) {
    rows.push(
      {
        scenario: "memory",
        figure,
        unit: "B",
        better: "lower",
        ours,
        baseline: "Redis used_memory growth",
        baselineValue: perMember(redisBytes),
      },
      {
        scenario: "memory",
        figure,
        unit: "B",
        better: "lower",
        ours,
        baseline: "Postgres table + PK index",
        baselineValue: perMember(postgresBytes),
      },
    );
  }
  return rows;
}
