import { describe, expect, it } from "vitest";
import { FailedPreconditionError } from "../../src/errors.js";
import { SEGMENT_STATUSES, type SegmentStatus } from "../../src/model.js";
import { nextStatus, type Transition } from "../../src/service/lifecycle.js";

// Every (status × transition) pair: the status it leads to, or undefined when refused.
const TABLE: Record<SegmentStatus, Record<Transition, SegmentStatus | undefined>> = {
  DRAFT: {
    ActivateSegment: "ACTIVE",
    PauseSegment: undefined,
    ResumeSegment: undefined,
    ArchiveSegment: "ARCHIVED",
    RestoreSegment: undefined,
  },
  ACTIVE: {
    ActivateSegment: undefined,
    PauseSegment: "PAUSED",
    ResumeSegment: undefined,
    ArchiveSegment: "ARCHIVED",
    RestoreSegment: undefined,
  },
  PAUSED: {
    ActivateSegment: undefined,
    PauseSegment: undefined,
    ResumeSegment: "ACTIVE",
    ArchiveSegment: "ARCHIVED",
    RestoreSegment: undefined,
  },
  ARCHIVED: {
    ActivateSegment: undefined,
    PauseSegment: undefined,
    ResumeSegment: undefined,
    ArchiveSegment: undefined,
    RestoreSegment: "PAUSED",
  },
};

describe("segment lifecycle", () => {
  const cases = SEGMENT_STATUSES.flatMap((from) =>
    (Object.keys(TABLE[from]) as Transition[]).map((transition) => ({ from, transition, to: TABLE[from][transition] })),
  );

  it.each(cases)("$from + $transition → $to", ({ from, transition, to }) => {
    if (to !== undefined) {
      expect(nextStatus(from, transition)).toBe(to);
    } else {
      expect(() => nextStatus(from, transition)).toThrow(FailedPreconditionError);
      expect(() => nextStatus(from, transition)).toThrow(`the segment is ${from}`);
    }
  });

  it("names the allowed operations when refusing", () => {
    expect(() => nextStatus("PAUSED", "PauseSegment")).toThrow("allowed from PAUSED: ResumeSegment, ArchiveSegment");
  });
});
