/** One HDR histogram shape for workers and the merge: 1 µs to 60 s at 3 significant digits. */
import { build, type Histogram } from "hdr-histogram-js";

export const MAX_US = 60_000_000;

/** A new, empty latency histogram in microseconds. */
export function latencyHistogram(): Histogram {
  return build({ lowestDiscernibleValue: 1, highestTrackableValue: MAX_US, numberOfSignificantValueDigits: 3, autoResize: false });
}

/** A new, empty latency histogram in nanoseconds: 1 ns to 60 s at 3 significant digits (in-process timings). */
export function latencyHistogramNs(): Histogram {
  return build({ lowestDiscernibleValue: 1, highestTrackableValue: MAX_US * 1000, numberOfSignificantValueDigits: 3, autoResize: false });
}
