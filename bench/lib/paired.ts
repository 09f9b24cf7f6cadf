/**
 * Figures compared window by window. On this shared machine a run's throughput and CPU per call
 * move by ±30% with whatever else runs, so two medians taken from different minutes compare the
 * machine's moods as much as the systems. Two windows run back to back see nearly the same
 * machine: each pair gives one ratio, and the median of those ratios is the figure.
 */

/** The median of the defined values (the mean of the middle two for an even count); NaN when none. */
export function median(values: readonly (number | undefined)[]): number {
  const sorted = values.filter((v): v is number => v !== undefined && Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = sorted.length / 2;
  return Number.isInteger(mid) ? ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2 : (sorted[Math.floor(mid)] ?? Number.NaN);
}

/** variant[i] ÷ baseline[i] for every pair where both were measured, sorted. */
export function pairedRatios(variant: readonly (number | undefined)[], baseline: readonly (number | undefined)[]): number[] {
  const ratios: number[] = [];
  variant.forEach((v, i) => {
    const b = baseline[i];
    if (v !== undefined && b !== undefined && b > 0) ratios.push(v / b);
  });
  return ratios.sort((a, b) => a - b);
}

/**
 * A report row's two values for a paired comparison: the baseline's median, and that times the
 * median paired ratio, so the table's ours ÷ baseline column shows the paired figure rather than a
 * ratio of two medians taken from different windows.
 */
export function pairedValues(
  variant: readonly (number | undefined)[],
  baseline: readonly (number | undefined)[],
): { ours: number; baselineValue: number } {
  const baselineValue = median(baseline);
  return { ours: baselineValue * median(pairedRatios(variant, baseline)), baselineValue };
}
