import { describe, expect, it } from "vitest";
import { KeyedMutex } from "../../src/control/keyed-mutex.js";

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe("KeyedMutex", () => {
  it("runs work on one key one at a time, in arrival order, past failures", async () => {
    const mutex = new KeyedMutex();
    const events: string[] = [];
    const job = (name: string, fail = false) =>
      mutex.run("a", async () => {
        events.push(`${name} start`);
        await tick();
        events.push(`${name} end`);
        if (fail) throw new Error(name);
        return name;
      });
    const results = await Promise.allSettled([job("1"), job("2", true), job("3")]);
    expect(events).toEqual(["1 start", "1 end", "2 start", "2 end", "3 start", "3 end"]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
  });

  it("lets different keys overlap", async () => {
    const mutex = new KeyedMutex();
    const events: string[] = [];
    const job = (key: string) =>
      mutex.run(key, async () => {
        events.push(`${key} start`);
        await tick();
        events.push(`${key} end`);
      });
    await Promise.all([job("a"), job("b")]);
    expect(events.slice(0, 2)).toEqual(["a start", "b start"]);
  });
});

describe("KeyedMutex with an abort signal", () => {
  it("rejects a waiter whose signal aborts at once, and never runs its work", async () => {
    const mutex = new KeyedMutex();
    let release: () => void = () => undefined;
    const first = mutex.run("a", () => new Promise<void>((resolve) => (release = resolve)));
    const abort = new AbortController();
    let ran = false;
    const waiting = mutex.run(
      "a",
      async () => {
        ran = true;
      },
      abort.signal,
    );
    abort.abort(new Error("gave up"));
    await expect(waiting).rejects.toThrow("gave up");
    release();
    await first;
    // The next caller still gets its turn, and the aborted one never ran.
    await mutex.run("a", async () => undefined);
    expect(ran).toBe(false);
  });

  it("does not start work for a signal that is already aborted", async () => {
    const mutex = new KeyedMutex();
    const abort = new AbortController();
    abort.abort(new Error("too late"));
    let ran = false;
    await expect(
      mutex.run(
        "a",
        async () => {
          ran = true;
        },
        abort.signal,
      ),
    ).rejects.toThrow("too late");
    expect(ran).toBe(false);
  });
});

describe("KeyedMutex once work has started", () => {
  it("settles with the work's own outcome even if the signal aborts meanwhile", async () => {
    const mutex = new KeyedMutex();
    const abort = new AbortController();
    const result = mutex.run(
      "a",
      async () => {
        abort.abort(new Error("too late to matter"));
        await tick();
        return "committed";
      },
      abort.signal,
    );
    await expect(result).resolves.toBe("committed");
  });
});
