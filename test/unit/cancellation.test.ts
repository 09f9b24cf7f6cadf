import { describe, expect, it } from "vitest";
import { reserveAfterCommit, setDeadline, throwIfOver } from "../../src/control/cancellation.js";
import { DeadlineExceededError } from "../../src/errors.js";

describe("reserveAfterCommit", () => {
  it("moves the time to commit by by the reserve, which a later reserve replaces", () => {
    const signal = new AbortController().signal;
    setDeadline(signal, Date.now() + 60_000);
    expect(() => throwIfOver(signal)).not.toThrow();
    reserveAfterCommit(signal, 120_000);
    expect(() => throwIfOver(signal)).toThrow(DeadlineExceededError);
    // A transaction that runs again reserves again: the reserve is replaced, not added to.
    reserveAfterCommit(signal, 30_000);
    reserveAfterCommit(signal, 30_000);
    expect(() => throwIfOver(signal)).not.toThrow();
  });

  it("does nothing for a call without a deadline", () => {
    const signal = new AbortController().signal;
    reserveAfterCommit(signal, 1e12);
    expect(() => throwIfOver(signal)).not.toThrow();
    expect(() => reserveAfterCommit(undefined, 1)).not.toThrow();
  });
});
