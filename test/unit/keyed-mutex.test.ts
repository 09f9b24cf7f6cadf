import { describe, expect, it } from "vitest";
import { KeyedMutex } from "../../src/service/keyed-mutex.js";

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
