/**
 * The segment lifecycle as data: which status each transition starts from and leads to.
 * DRAFT → ACTIVE ⇄ PAUSED; DRAFT, ACTIVE, PAUSED → ARCHIVED; ARCHIVED → PAUSED (restore).
 */
import { FailedPreconditionError } from "../errors.js";
import type { HistoryAction, SegmentStatus } from "../model.js";

/** A lifecycle operation, named as its RPC. */
export type Transition = "ActivateSegment" | "PauseSegment" | "ResumeSegment" | "ArchiveSegment" | "RestoreSegment";

const TRANSITIONS: Record<Transition, { from: readonly SegmentStatus[]; to: SegmentStatus; action: HistoryAction }> = {
  ActivateSegment: { from: ["DRAFT"], to: "ACTIVE", action: "ACTIVATE" },
  PauseSegment: { from: ["ACTIVE"], to: "PAUSED", action: "PAUSE" },
  ResumeSegment: { from: ["PAUSED"], to: "ACTIVE", action: "RESUME" },
  ArchiveSegment: { from: ["DRAFT", "ACTIVE", "PAUSED"], to: "ARCHIVED", action: "ARCHIVE" },
  // Restored segments come back paused, so nothing starts targeting them by surprise.
  RestoreSegment: { from: ["ARCHIVED"], to: "PAUSED", action: "RESTORE" },
};

/** The audit action a transition records. */
export function transitionAction(transition: Transition): HistoryAction {
  return TRANSITIONS[transition].action;
}

/** The operations allowed on a segment in `status`, for error messages. */
export function allowedTransitions(status: SegmentStatus): Transition[] {
  return (Object.keys(TRANSITIONS) as Transition[]).filter((t) => TRANSITIONS[t].from.includes(status));
}

/** The status `transition` leads to from `status`, or FailedPreconditionError naming what is allowed. */
export function nextStatus(status: SegmentStatus, transition: Transition): SegmentStatus {
  const rule = TRANSITIONS[transition];
  if (!rule.from.includes(status)) {
    const allowed = allowedTransitions(status);
    throw new FailedPreconditionError(
      "status",
      `${transition} is not allowed: the segment is ${status}; allowed from ${status}: ${allowed.length > 0 ? allowed.join(", ") : "none"}`,
    );
  }
  return rule.to;
}
